"""Shared fixtures. Every test's data comes from the synthetic register (povdyn.synth),
whose planted truths are known, or from small hand-made panels inside the test."""
from __future__ import annotations

import os

# One BLAS thread per process: on 2 cores, OpenBLAS threads fighting each other make the
# statsmodels fits ~20x slower. Must be set before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

# Tests must not depend on a user's key file or settings.
os.environ.setdefault("POVDYN_PSEUDONYM_KEY", "test-key-not-secret")
os.environ.setdefault("POVDYN_DUCKDB_THREADS", "1")


@pytest.fixture(scope="session")
def demo_register():
    """A small synthetic national register (full panel, quarterly), generated once per run.
    Has .panel (canonical columns), .support and .truth."""
    from povdyn.synth import generate

    return generate(households=4_000, seed=7, frequency="quarter")


@pytest.fixture(scope="session")
def spark_session():
    """One local Spark session for the whole run (start-up costs ~10 s)."""
    from povdyn.engine import spark_session

    spark = spark_session()
    yield spark
    spark.stop()
