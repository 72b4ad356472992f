"""WSGI entry point: ``gunicorn wsgi:app`` and ``FLASK_APP=wsgi flask …``."""

from evaluation import create_app

app = create_app()
