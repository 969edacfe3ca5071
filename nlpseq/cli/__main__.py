"""``python -m nlpseq.cli``: the command line."""

from nlpseq.cli import main

main()
