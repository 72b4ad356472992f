"""Tests of evaluation.rounds."""
