"""Tests of evaluation.archive."""
