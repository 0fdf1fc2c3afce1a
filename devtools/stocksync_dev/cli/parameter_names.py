"""Which template parameter (``sam deploy --parameter-overrides``) stands for which scenario setting.

A scenario names settings as the functions do (``threshold``), a deployment as ``sam deploy`` does
(``FastThreshold``). README's settings-to-parameters table is the reader's translation; this module is the same
table for code (``stocksync tune`` writes its recommendation with it), and tests/unit/test_scenario_parameters.py
checks that the two agree and that every parameter named here exists in template.yaml and feeds that setting, so
neither can go stale alone.
"""

from __future__ import annotations

BUCKET_KEY = "settings.buckets.<b>."
BUCKET_PLACEHOLDER = "<B>"

# Scenario key -> template parameter (None: the template has no parameter for it). ``<B>`` is the bucket's name
# with a capital first letter (fast -> Fast), as the template spells its per-bucket parameters.
PARAMETER_NAMES: dict[str, str | None] = {
    "settings.deduction_mode": "DeductionMode",
    "settings.field": "CatalogField",
    "settings.catalog_reads_per_hour": "CatalogReadsPerHour",
    "settings.default_bucket": "DefaultBucket",
    f"{BUCKET_KEY}threshold": f"{BUCKET_PLACEHOLDER}Threshold",
    f"{BUCKET_KEY}sweep_rate": f"{BUCKET_PLACEHOLDER}SweepRate",
    f"{BUCKET_KEY}min_units_per_hour": f"{BUCKET_PLACEHOLDER}MinUnitsPerHour",
    f"{BUCKET_KEY}allocation_percent": None,
    f"{BUCKET_KEY}allocation_fixed": None,
    "platform.batch_processing_seconds": None,
    "platform.batch_apply_fraction": None,
}


def setting_parameter(name: str) -> str | None:
    """The parameter of a deployment-wide setting (``deduction_mode`` -> ``DeductionMode``), None if it has none."""
    return PARAMETER_NAMES[f"settings.{name}"]


def bucket_parameter(bucket: str, key: str) -> str | None:
    """The parameter of one bucket's setting (``fast``, ``threshold`` -> ``FastThreshold``); None when the template
    has none for that key (allocation)."""
    pattern = PARAMETER_NAMES[f"{BUCKET_KEY}{key}"]
    return None if pattern is None else pattern.replace(BUCKET_PLACEHOLDER, bucket.capitalize())


__all__ = ["BUCKET_KEY", "PARAMETER_NAMES", "bucket_parameter", "setting_parameter"]
