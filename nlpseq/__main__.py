"""``python -m nlpseq``: the command line."""

from nlpseq.cli import main

main()
