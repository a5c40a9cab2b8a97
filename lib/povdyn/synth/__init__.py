"""Synthetic national household-poverty register with planted truths.

The simulation lives in ``povdyn.synth.simulate``, disk output in ``povdyn.synth.writers``;
this package re-exports the public entry points.

No real register is available, so every test, notebook and the demo run on this one.
It behaves like the registers the offices keep (issue 3 §4):

Geography. The 63 pre-2025 provinces (``data/provinces_2025.csv``) with rough 2019
household shares, each with real communes of that province and their districts, taken
from the official 2025 crosswalk (``povdyn.geo.commune_crosswalk_2025``; deterministic):
whole groups of old communes that merged into one 2025 commune, and a commune that was
split, in every province that has one. A ward (phường) or town (thị trấn) is urban, a
commune (xã) rural, and its households take that area; commune weights are scaled so
that urban communes hold the province's urban share. Ethnic-minority shares by province
follow the census shape (highest in the Northern Midlands and Mountains and the Central
Highlands). ``province``, ``district`` and ``commune`` are the names as recorded: the
old 63 provinces with their districts and communes before 2025Q3; from 2025Q3 on the
34 new provinces, no district, and the household's 2025 commune (a split commune's
households go to its main successor with odds ``SPLIT_MAIN_SHARES`` : 1 against each
other piece). ``province_2025`` and ``region`` are on every row of
``SynthRegister.panel``.

Income (VND per person per month, as the review records it; rounded to 1,000 VND):
``log income = region/province level + urban premium - ethnic-minority gap - size
effect + persistent household level + permanent shocks (random walk) + national
growth + measurement noise + programme effect``. Growth and region levels are
calibrated (``CALIBRATION``) so that the national poor share is ≈ 4.0% in 2022 falling
to ≈ 1.3% in 2025 and near-poor ≈ 3.5% -> ≈ 2.2%, with the Northern Midlands and
Mountains in the low teens and the Southeast well under 1%. The 12 deprivation
indicators come from a persistent household deprivation score (correlated with the
household income level, ethnicity and region) that improves over time, plus
indicator-specific household effects and small yearly noise.

Achieved at 1,000,000 households (seed 2025, annual reviews; target from domain.md):

    review  poor %  (target)   near-poor %  (target)
    2021    1.70    (2.2, old standard)  0.76
    2022    4.09    (4.03)     3.56         (3.49)
    2023    2.92    (2.93)     2.79         (2.78)
    2024    1.90    (1.93)     2.15         (2.13)
    2025    1.27    (≈1.3)     2.19         (≈2.2–2.5)

    poor % 2022 by region: Northern Midlands and Mountains 15.2, Central Highlands 6.6,
    North Central and Central Coast 4.6, Mekong River Delta 2.2, Red River Delta 1.2,
    Southeast 0.42. Ethnic-minority households 20.5% (2022) -> 9.9% (2024) (real
    21.0 -> 12.6). Relapse (poor at the next review after an exit): 5.6% of 2023 exits,
    6.2% of 2024 exits (≈ 5% target); 14% of 2022 "exits", which cross the 2021 -> 2022
    change of standard (flag them, methods.md).

Relapse and entry risk (issue 12; ``simulate.HARDSHIP``). From 2023 each household may
suffer a yearly hardship (illness, job loss, crop or disaster loss) whose chance is a
logistic function of what the office recorded at the previous review: how far the
recorded income is above the poverty line (fragile exits), remaining deprivations
(health insurance, housing quality and area, dependants), household size, ethnic
minority, rural area, region, the commune's own exposure (not in the register) and
support received (protective in proportion to the programme's planted income effect, so
the null programme stays null). A hit lowers that year's income by 15% or more and
leaves the household short of work and food that year. From 2023 the deprivations
evolve from the ones the review recorded (each deprived indicator resolves with chance
0.2 a year, each other one starts with chance 0.005, plus the hardship's), so what the
office sees at a review is the household's whole deprivation state; 2021-2022 keep the
latent deprivation score. The yearly permanent shock was lowered (sd 0.075 -> 0.058)
and growth retuned so the calibration holds: at 600,000 households (seed 2025, annual)
poor 4.09 / 2.90 / 1.93 / 1.43 % and near-poor 3.55 / 2.72 / 1.96 / 1.82 % in
2022..2025, relapse at the next review 4.4% of 2023 exits and 5.8% of 2024 exits.
``truth_risk.parquet`` (``SynthRegister.truth_risk``) gives, for each exit and each
near-poor household at the 2022..2024 reviews, the true probability *at that review* of
being poor at one of the next 1 / 2 annual reviews: given everything the process has
realised by the review (traits, the persistent income level and shocks so far, the
recorded income and deprivations, the commune's hardship exposure, support already
started, communes' adoptions so far) and integrated over everything drawn after it
(later income shocks, noise, deprivation changes and hardships, next years' national
growth, support that starts later), in 1,000 futures with common random numbers
(``simulate._risk_truth``). National growth is part of the process's randomness: each
year's growth from 2022 on is drawn uniformly from the calibrated path's four values
(0.100, 0.033, 0.056, 0.027; ``simulate.GROWTH_AHEAD``), and the register's path is the
realisation it drew -- so a cohort's realised rate sits above the truth's mean in a
slow year (2025) and below it in a fast one. With the realised growth and later support
taken as known (``known_future=True``, the truth of stops up to 15) the mean matches the
register's rate within sampling error (tests/test_risk.py).

Reviews and snapshots. The annual review (Q4) classifies every household with
:func:`povdyn.standards.classify` under the dated national standard (2021 under the
2016–2021 standard). Between reviews a quarterly snapshot carries the status recorded at
the last review, re-classified under the standard in force (so 2022Q1 shows the
2022–2025 standard applied to the 2021 review's data, which is how the new lists were
drawn up); about a quarter of the households whose status changes at a review are
updated ad hoc in Q1–Q3 of that year, so quarterly snapshots move between reviews.
``frequency="year"`` gives the five annual reviews 2021..2025 (int periods).

Removals (≈ 1.5% a year): death, migration, merger, split — ONE row at the period of
removal with status NA and ``removal_reason`` set, no rows after. A split creates two new
households (new ids) in the next quarter, assessed when they form.

Identifiers. Rows carry the direct identifiers raw registers hold — ``head_name``,
``id_card`` (12 digits), ``phone``, ``address`` — and raw ids like "HH00012345", also in
``SynthRegister.panel`` (ingest drops / pseudonymises them).

Support programmes (``data/programs.csv``). Each programme is adopted by communes in
2022, 2023 or 2024 (staggered; oyster farming only in coastal provinces). In adopting
communes, households poor or near-poor at the last review are selected each year on
observables (lower income, ethnic minority, larger household, more deprivations, rural
more likely) — not at random. A household gets at most one programme. Support starts in
a quarter Q1–Q3 of the start year; from then on its income carries the programme's
planted effect (a log-income shift, ``PROGRAMS``): vocational training clearly
effective, garment outsourcing zero, oyster farming fading (large for the 2022 cohort,
zero for 2024), the others moderate.

Truth (``SynthRegister.truth``, written to ``truth.json`` beside the demo data, never in
the register). For each treated household the untreated path is simulated with the same
random numbers (common random numbers: same shocks, same deprivations, no effect), so
the realised sample ATT is known exactly for the outcome "sustained exit within k annual
reviews": poor at the baseline review t0 (the last Q4 review before support starts =
start year - 1) and not poor at each review t0+1..t0+k; households removed before t0+k
or whose t0+k is after 2025 are left out (censored). ATT = mean over those treated of
[sustained exit with support] - [sustained exit without support], a difference in
probabilities.

Determinism and scale. Households are generated in fixed chunks of ``CHUNK`` households
with their own seeds (``SeedSequence([seed, chunk])``), geography and commune adoption
from a separate stream, so the output depends only on (households, seed) — not on
memory or on how the chunks are written — and a national run (27M households) streams
chunk by chunk to partitioned parquet in bounded memory.
"""
from __future__ import annotations

from .simulate import (CALIBRATION, PROGRAMS, QUARTERS, REMOVAL_REASONS, YEARS, DemoSummary,
                       SynthRegister, _COASTAL, generate)
from .writers import write_demo

__all__ = ["generate", "write_demo", "SynthRegister", "DemoSummary", "CALIBRATION",
           "PROGRAMS", "QUARTERS", "REMOVAL_REASONS", "YEARS"]
