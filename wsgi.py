"""WSGI entry point: ``gunicorn wsgi:app`` and ``FLASK_APP=wsgi flask …``.

Once built, the application's own objects (modules, classes, templates, forms: about 150,000,
alive for the whole process) are moved out of the garbage collector's sight (``gc.freeze``).
No later full collection walks them again — and neither does the interpreter's shutdown, which
otherwise spends about 0.4 s of every ``flask`` command collecting them (docs/performance.md).
"""

import gc

from evaluation import create_app

app = create_app()
gc.collect()
gc.freeze()
