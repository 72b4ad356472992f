"""Tests of evaluation.voting."""
