"""The application pipelines, importable as ``nlpseq.apps``.

Each app registers itself in :data:`nlpseq.registry.APPS` under its command
name (``nlpseq <app> ...``).
"""
