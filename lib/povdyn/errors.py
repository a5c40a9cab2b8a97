"""Errors users see. Each message names what is wrong and where (file, row, column)."""


class PovdynError(Exception):
    """Base class for every error povdyn raises on purpose."""


class SchemaError(PovdynError, ValueError):
    """Input does not fit the register schema (missing column, bad value, duplicate key)."""


class PeriodError(PovdynError, ValueError):
    """A period label cannot be parsed, or frequencies are mixed."""


class StandardError(PovdynError, ValueError):
    """No poverty standard covers a period/place, or a standard is malformed."""


class EstimationError(PovdynError, ValueError):
    """An estimator cannot run on this input (no overlap, separation, constant covariate...)."""


class NotEnoughDataError(PovdynError, ValueError):
    """A report section has too little data for this region and period (no support
    records, no programme with supported households, no household at the period): the
    page shows the section as "being updated" instead of failing. Any other error fails
    the page (povdyn.tables.optional_section)."""
