"""Tests of evaluation.tally."""
