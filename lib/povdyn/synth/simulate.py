"""The simulation behind povdyn.synth: geography, incomes, reviews, removals, support
programmes and the planted truths. The model is described in the package docstring
(``povdyn/synth/__init__.py``); disk output is in ``writers``."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import standards as _std

YEARS = (2021, 2022, 2023, 2024, 2025)
FIRST_Q = 2021 * 4 + 3  # 2021Q4
LAST_Q = 2025 * 4 + 3  # 2025Q4
QUARTERS = tuple(range(FIRST_Q, LAST_Q + 1))
REFORM_Q = 2025 * 4 + 2  # 2025Q3: new province names recorded from here on
CHUNK = 1_000_000
DEPS = list(_std.INDICATORS_2022)
REMOVAL_REASONS = ("death", "migration", "merger", "split")

# ---------------------------------------------------------------- calibration constants
# Tuned offline (iterating region levels, yearly growth and the deprivation trend on
# 150,000 households) against domain.md's national and regional figures.
CALIBRATION = {
    # log income per person per month of a rural Kinh household of 4, 2021, before the
    # household level; by region
    "region_base": {
        "Northern Midlands and Mountains": 14.8258,
        "Central Highlands": 14.9068,
        "North Central and Central Coast": 14.6078,
        "Mekong River Delta": 14.9031,
        "Red River Delta": 14.8092,
        "Southeast": 15.0228,
    },
    "urban_premium": 0.40,
    "ethnic_gap": 0.45,
    "size_effect": -0.05,  # per member above 4
    "sd_household": 0.42,  # persistent household level
    "sd_shock": 0.058,  # permanent yearly shock (0.075 before the hardship of issue 12)
    "sd_noise": 0.03,  # review measurement noise
    "sd_dep_noise": 0.25,  # yearly noise of each deprivation indicator's score
    "growth": [0.0000, 0.1000, 0.0330, 0.0560, 0.0270],  # yearly national growth 2021..2025 (log)
    "ethnic_catch_up": 0.03,  # extra yearly growth of ethnic-minority households
    # deprivation score: trend by year (higher = fewer deprivations)
    "dep_trend": [0.0000, 0.0000, 0.0741, 0.2429, 0.5059],
    "dep_region": {
        "Northern Midlands and Mountains": 0.5,
        "Central Highlands": 0.35,
        "North Central and Central Coast": 0.15,
        "Mekong River Delta": 0.15,
        "Red River Delta": -0.1,
        "Southeast": -0.1,
    },
    "dep_threshold": 1.7401,
    "removal_rate_year": 0.015,
    "early_update_share": 0.25,
}

# indicator-specific threshold offsets (positive = rarer): health insurance is rare among
# the poor (free cards), housing and information-related deprivations are common
DEP_OFFSET = {
    "dep_employment": 0.2, "dep_dependants": 0.3, "dep_nutrition": 0.4,
    "dep_health_insurance": 0.8, "dep_adult_education": 0.1, "dep_child_school": 0.7,
    "dep_housing_quality": 0.0, "dep_housing_area": 0.3, "dep_water": 0.2,
    "dep_latrine": -0.1, "dep_telecom": 0.6, "dep_info_devices": 0.0,
}

# planted programme effects: log-income shift from the start of support, by start year
PROGRAMS = {
    "credit": dict(kind="moderate", effect={2022: 0.12, 2023: 0.12, 2024: 0.12, 2025: 0.12},
                   adopt=0.45, select=-1.3, amount=(30e6, 100e6), quarters=(8, 12)),
    "vocational_training": dict(kind="effective", effect={2022: 0.40, 2023: 0.40, 2024: 0.40, 2025: 0.40},
                                adopt=0.35, select=-1.4, amount=(3e6, 6e6), quarters=(1, 3)),
    "housing": dict(kind="moderate", effect={2022: 0.08, 2023: 0.08, 2024: 0.08, 2025: 0.08},
                    adopt=0.35, select=-1.6, amount=(40e6, 60e6), quarters=(2, 4)),
    "oyster_farming": dict(kind="fading", effect={2022: 0.80, 2023: 0.30, 2024: 0.0, 2025: 0.0},
                           adopt=0.6, select=-1.0, amount=(10e6, 25e6), quarters=(4, 8), coastal=True),
    "garment_outsourcing": dict(kind="null", effect={2022: 0.0, 2023: 0.0, 2024: 0.0, 2025: 0.0},
                                adopt=0.35, select=-1.4, amount=(2e6, 5e6), quarters=(2, 6)),
    "livestock": dict(kind="moderate", effect={2022: 0.15, 2023: 0.15, 2024: 0.15, 2025: 0.15},
                      adopt=0.4, select=-1.4, amount=(8e6, 20e6), quarters=(4, 8)),
}

# rough 2019 population (millions) of the 63 old provinces -> household shares
_POP = {
    "Hà Nội": 8.05, "Hà Giang": 0.85, "Cao Bằng": 0.53, "Bắc Kạn": 0.31, "Tuyên Quang": 0.78,
    "Lào Cai": 0.73, "Điện Biên": 0.6, "Lai Châu": 0.46, "Sơn La": 1.25, "Yên Bái": 0.82,
    "Hòa Bình": 0.85, "Thái Nguyên": 1.29, "Lạng Sơn": 0.78, "Quảng Ninh": 1.32, "Bắc Giang": 1.8,
    "Phú Thọ": 1.46, "Vĩnh Phúc": 1.15, "Bắc Ninh": 1.37, "Hải Dương": 1.89, "Hải Phòng": 2.03,
    "Hưng Yên": 1.25, "Thái Bình": 1.86, "Hà Nam": 0.85, "Nam Định": 1.78, "Ninh Bình": 0.98,
    "Thanh Hóa": 3.64, "Nghệ An": 3.33, "Hà Tĩnh": 1.29, "Quảng Bình": 0.9, "Quảng Trị": 0.63,
    "Thừa Thiên Huế": 1.13, "Đà Nẵng": 1.13, "Quảng Nam": 1.5, "Quảng Ngãi": 1.23,
    "Bình Định": 1.49, "Phú Yên": 0.87, "Khánh Hòa": 1.23, "Ninh Thuận": 0.59, "Bình Thuận": 1.23,
    "Kon Tum": 0.54, "Gia Lai": 1.51, "Đắk Lắk": 1.87, "Đắk Nông": 0.62, "Lâm Đồng": 1.3,
    "Bình Phước": 0.99, "Tây Ninh": 1.17, "Bình Dương": 2.43, "Đồng Nai": 3.1,
    "Bà Rịa - Vũng Tàu": 1.15, "Hồ Chí Minh": 8.99, "Long An": 1.69, "Tiền Giang": 1.76,
    "Bến Tre": 1.29, "Trà Vinh": 1.01, "Vĩnh Long": 1.02, "Đồng Tháp": 1.6, "An Giang": 1.91,
    "Kiên Giang": 1.72, "Cần Thơ": 1.24, "Hậu Giang": 0.73, "Sóc Trăng": 1.2, "Bạc Liêu": 0.91,
    "Cà Mau": 1.19,
}
# ethnic-minority share of households (census shape); others 2%
_ETHNIC = {
    "Hà Giang": 0.88, "Cao Bằng": 0.95, "Bắc Kạn": 0.88, "Tuyên Quang": 0.54, "Lào Cai": 0.65,
    "Điện Biên": 0.82, "Lai Châu": 0.85, "Sơn La": 0.83, "Yên Bái": 0.55, "Hòa Bình": 0.73,
    "Thái Nguyên": 0.27, "Lạng Sơn": 0.83, "Bắc Giang": 0.12, "Phú Thọ": 0.17, "Quảng Ninh": 0.11,
    "Kon Tum": 0.53, "Gia Lai": 0.45, "Đắk Lắk": 0.30, "Đắk Nông": 0.30, "Lâm Đồng": 0.23,
    "Thanh Hóa": 0.16, "Nghệ An": 0.14, "Quảng Trị": 0.10, "Quảng Nam": 0.08, "Quảng Ngãi": 0.12,
    "Ninh Thuận": 0.22, "Bình Phước": 0.18, "Trà Vinh": 0.31, "Sóc Trăng": 0.35, "Bạc Liêu": 0.09,
    "Kiên Giang": 0.13, "An Giang": 0.05, "Bình Thuận": 0.05,
}
# urban share of households; default by region
_URBAN_REGION = {
    "Northern Midlands and Mountains": 0.2, "Central Highlands": 0.28,
    "North Central and Central Coast": 0.28, "Mekong River Delta": 0.25,
    "Red River Delta": 0.35, "Southeast": 0.55,
}
_URBAN = {"Hà Nội": 0.49, "Hồ Chí Minh": 0.78, "Đà Nẵng": 0.87, "Bình Dương": 0.8,
          "Hải Phòng": 0.46, "Quảng Ninh": 0.64, "Cần Thơ": 0.7, "Bà Rịa - Vũng Tàu": 0.5}
# extra log-income level of provinces that stand out within their region
_PROVINCE_LEVEL = {
    "Hà Giang": -0.22, "Điện Biên": -0.22, "Lai Châu": -0.22, "Cao Bằng": -0.12, "Sơn La": -0.12,
    "Bắc Kạn": -0.08, "Kon Tum": -0.12, "Hà Nội": 0.15, "Hồ Chí Minh": 0.15, "Bình Dương": 0.2,
    "Đà Nẵng": 0.2, "Hải Phòng": 0.08, "Quảng Ninh": 0.1, "Bắc Ninh": 0.12,
}
_COASTAL = {
    "Quảng Ninh", "Hải Phòng", "Thái Bình", "Nam Định", "Ninh Bình", "Thanh Hóa", "Nghệ An",
    "Hà Tĩnh", "Quảng Bình", "Quảng Trị", "Thừa Thiên Huế", "Đà Nẵng", "Quảng Nam",
    "Quảng Ngãi", "Bình Định", "Phú Yên", "Khánh Hòa", "Ninh Thuận", "Bình Thuận",
    "Bà Rịa - Vũng Tàu", "Hồ Chí Minh", "Tiền Giang", "Bến Tre", "Trà Vinh", "Sóc Trăng",
    "Bạc Liêu", "Cà Mau", "Kiên Giang",
}
_SYL1 = ["Tân", "Hòa", "Phú", "An", "Bình", "Thạnh", "Vĩnh", "Long", "Đông", "Tây", "Nam",
         "Bắc", "Trung", "Hưng", "Thuận", "Phước", "Minh", "Quang", "Hồng", "Thanh", "Xuân",
         "Đại", "Cẩm", "Kim", "Hải", "Sơn", "Lâm", "Mỹ", "Hiệp", "Đức"]
_SYL2 = ["Lập", "Bình", "Phú", "Hòa", "An", "Thịnh", "Lợi", "Thành", "Hưng", "Tiến", "Phong",
         "Sơn", "Long", "Mỹ", "Lộc", "Thủy", "Hải", "Xuân", "Điền", "Trung"]
_FAMILY = ["Nguyễn"] * 8 + ["Trần"] * 3 + ["Lê"] * 2 + ["Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ",
                                                      "Võ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý"]
_FAMILY_EM = ["Lò", "Giàng", "Vàng", "Sùng", "Lầu", "Hà", "Đinh", "Triệu", "Nông", "Lường", "Quàng", "Lý"]
_MIDDLE = ["Văn", "Thị", "Hữu", "Đức", "Minh", "Thanh", "Ngọc", "Quang", "Văn", "Thị"]
_GIVEN = ["An", "Bình", "Cường", "Dũng", "Hà", "Hải", "Hạnh", "Hùng", "Hương", "Lan", "Linh",
          "Long", "Mai", "Nam", "Nga", "Phong", "Phương", "Quân", "Sơn", "Tâm", "Thảo", "Thủy",
          "Trang", "Trung", "Tuấn", "Vân", "Yến", "Khánh", "Lộc", "Páo", "Chư", "Sinh"]


@dataclass
class SynthRegister:
    """A generated register: ``panel`` (canonical columns + raw identifiers, one row per
    household per period, removal rows included), ``support`` (support records) and
    ``truth`` (planted effects and realised ATTs; goes to truth.json, never the panel)."""

    panel: pd.DataFrame
    support: pd.DataFrame
    truth: dict
    raw_panel: pd.DataFrame | None = None
    adoption: pd.DataFrame | None = None  # commune programme adoption dates (adoption_frame)
    truth_risk: pd.DataFrame | None = None  # goes to truth_risk.parquet (see risk_truth_frame)


@dataclass
class DemoSummary:
    """What write_demo wrote."""

    out_dir: Path
    files: list = field(default_factory=list)
    rows: int = 0
    households: int = 0
    support_rows: int = 0
    seconds: float = 0.0
    style: str = "full"
    fmt: str = "csv"
    frequency: str = "quarter"

    def __str__(self) -> str:
        shown = ", ".join(str(f) for f in self.files[:6]) + (" ..." if len(self.files) > 6 else "")
        return (f"synthetic register ({self.style}, {self.fmt}, {self.frequency}) -> {self.out_dir}\n"
                f"  {self.households:,} households, {self.rows:,} register rows, "
                f"{self.support_rows:,} support records, {len(self.files)} files in {self.seconds:.1f} s\n"
                f"  files: {shown}\n  planted truth: {Path(self.out_dir) / 'truth.json'}")


# ---------------------------------------------------------------- geography
@dataclass
class _Geo:
    provinces: pd.DataFrame  # old_code, old_province, province_2025, region, weight, ...
    commune_province: np.ndarray  # commune -> province row
    commune_name: np.ndarray  # object: real pre-reform name ("Phường 12", "Xã Tân Phú")
    commune_urban: np.ndarray  # bool
    commune_weight: np.ndarray  # within-province sampling weight (normalised)
    commune_start: np.ndarray  # first commune index of each province
    commune_count: np.ndarray
    adoption: dict  # program -> int array over communes (0 = never)
    commune_district: np.ndarray = None  # object: its pre-reform district ("Quận 11")
    # the 2025 unit(s) of each commune: pieces piece_start[c] .. +piece_count[c]; a split
    # commune's households go to its pieces with probabilities piece_cum (cumulative)
    piece_start: np.ndarray = None
    piece_count: np.ndarray = None
    piece_name: np.ndarray = None  # object: 2025 commune names
    piece_cum: np.ndarray = None
    # all_communes: household number h (1..households) lives in commune
    # searchsorted(commune_cum, (h - 0.5) / households) instead of a random draw
    commune_cum: np.ndarray = None


def _provinces() -> pd.DataFrame:
    p = pd.read_csv(Path(__file__).parent.parent / "data" / "provinces_2025.csv", dtype=str, encoding="utf-8")
    p["pop"] = p.old_province.map(_POP).fillna(1.0)
    p["weight"] = p["pop"] / p["pop"].sum()
    p["ethnic_share"] = p.old_province.map(_ETHNIC).fillna(0.02)
    p["urban_share"] = p.old_province.map(_URBAN).fillna(p.region.map(_URBAN_REGION))
    p["level"] = p.old_province.map(_PROVINCE_LEVEL).fillna(0.0)
    p["coastal"] = p.old_province.isin(_COASTAL)
    return p.reset_index(drop=True)


# a split commune's households: the main successor takes this many shares, other pieces 1
SPLIT_MAIN_SHARES = 2.0


def _pick_communes(units: pd.DataFrame, n_c: int, rng) -> pd.DataFrame:
    """n_c real old communes of one province, chosen so that the register holds real
    merges and splits: whole groups of old communes that merged into one 2025 commune
    (in random order), one split commune first when the province has any, and at least
    one urban (Phường, Thị trấn) and one rural (Xã) commune when it has both."""
    one = units.drop_duplicates("unit", keep="first")
    chosen: list = []
    split = one[one["split"]]
    if len(split):
        chosen.append(split.index[rng.integers(len(split))])
    groups = one.groupby("commune_code", sort=True).indices
    keys = list(groups)
    taken = set(chosen)
    for g in rng.permutation(len(keys)):
        if len(chosen) >= n_c:
            break
        for idx in one.index[groups[keys[g]]]:
            if idx not in taken and len(chosen) < n_c:
                chosen.append(idx)
                taken.add(idx)
    urban = one["old_commune"].str.startswith(("Phường", "Thị trấn"))
    for want in (True, False):
        if (urban == want).any() and not (urban.loc[chosen] == want).any():
            chosen[-1 if len(chosen) >= n_c else len(chosen):] = [urban[urban == want].index[0]]
    return one.loc[chosen]


# all_communes: the fewest original households each 2025 piece of an old commune gets
# (a split commune's least piece takes 1/(pieces + 1) of the commune's households)
ALL_COMMUNES_MIN_PER_PIECE = 10


def _geography(households: int, seed: int, all_communes: bool = False) -> _Geo:
    """Communes of the synthetic register: real pre-reform communes and wards (with
    their districts) of each old province, from the official crosswalk
    (``povdyn.geo.commune_crosswalk_2025``), and the real 2025 units they went to, so
    every test and the demo report cross the July 2025 reform through real merges and
    splits. Urban = a ward (Phường) or town (Thị trấn); within a province, commune
    weights are drawn at random and scaled so that urban communes hold the province's
    urban share of households (the calibration targets).

    all_communes: every old commune of every province (all 3,321 2025 communes), and
    households laid out by number instead of drawn (``commune_cum``): each commune's
    share is its province's population share times its weight in the province, but at
    least ``ALL_COMMUNES_MIN_PER_PIECE`` households per 2025 piece, so that every 2025
    commune has households at every period (about 111,000 households at least; fewer
    is an error that says how many)."""
    from ..geo import commune_crosswalk_2025

    rng = np.random.default_rng(np.random.SeedSequence([seed, 10**9 + 1]))
    prov = _provinces()
    crosswalk = commune_crosswalk_2025()
    crosswalk["unit"] = crosswalk["old_commune_code"].fillna("island " + crosswalk["old_commune"])
    by_province = dict(tuple(crosswalk.groupby("old_province", sort=False)))
    names_2025 = crosswalk["commune_2025"].to_numpy()
    main_2025 = crosswalk["main_successor"].to_numpy()
    pieces_of = {unit: (names_2025[rows], main_2025[rows])
                 for unit, rows in crosswalk.groupby("unit", sort=False).indices.items()}
    cp, cn, cd, cu, cw, start, count = [], [], [], [], [], [], []
    piece_start, piece_count, piece_name, piece_cum = [], [], [], []
    for i, row in prov.iterrows():
        units = by_province[row.old_province]
        n_c = (units["unit"].nunique() if all_communes
               else int(np.clip(round(households * row.weight / 150), 3, 300)))
        picked = _pick_communes(units, min(n_c, units["unit"].nunique()), rng)
        n_c = len(picked)
        start.append(len(cp))
        count.append(n_c)
        urban = picked["old_commune"].str.startswith(("Phường", "Thị trấn")).to_numpy()
        weight = rng.gamma(2.0, 1.0, n_c)
        if urban.any() and (~urban).any():
            weight = np.where(urban, row.urban_share * weight / weight[urban].sum(),
                              (1 - row.urban_share) * weight / weight[~urban].sum())
        cw.extend(weight / weight.sum())
        for unit, name, district, is_urban in zip(picked["unit"], picked["old_commune"],
                                                  picked["old_district"], urban):
            cp.append(i)
            cn.append(name)
            cd.append(district)
            cu.append(bool(is_urban))
            names, main = pieces_of[unit]
            shares = np.where(main & (len(names) > 1), SPLIT_MAIN_SHARES, 1.0)
            piece_start.append(len(piece_name))
            piece_count.append(len(names))
            piece_name.extend(names)
            piece_cum.extend(np.cumsum(shares) / shares.sum())
    commune_province = np.array(cp)
    n_comm = len(cp)
    adoption = {}
    coastal = prov.coastal.to_numpy()[commune_province]
    for code, spec in PROGRAMS.items():
        adopt = rng.random(n_comm) < spec["adopt"]
        if spec.get("coastal"):
            adopt &= coastal
        year = rng.choice(list(ADOPTION_YEARS), n_comm)
        adoption[code] = np.where(adopt, year, 0)
    geo = _Geo(prov, commune_province, np.array(cn, dtype=object), np.array(cu),
               np.array(cw), np.array(start), np.array(count), adoption,
               commune_district=np.array(cd, dtype=object),
               piece_start=np.array(piece_start), piece_count=np.array(piece_count),
               piece_name=np.array(piece_name, dtype=object), piece_cum=np.array(piece_cum))
    if all_communes:
        geo.commune_cum = _all_communes_layout(geo, households)
    return geo


def _all_communes_layout(geo: _Geo, households: int) -> np.ndarray:
    """Cumulative household shares of the communes (``_Geo.commune_cum``): province
    population share x commune weight, raised to the floor of
    ``ALL_COMMUNES_MIN_PER_PIECE`` households per 2025 piece (split communes' pieces are
    unequal: pieces + 1 floors), then normalised."""
    share = geo.provinces.weight.to_numpy()[geo.commune_province] * geo.commune_weight
    pieces = geo.piece_count.astype(float)
    floor = ALL_COMMUNES_MIN_PER_PIECE * np.where(pieces > 1, pieces + 1, 1) / households
    if floor.sum() > 1:
        raise ValueError(f"all_communes needs at least {int(np.ceil(floor.sum() * households)):,} households "
                         f"({ALL_COMMUNES_MIN_PER_PIECE} per 2025 piece of each of the {len(floor):,} old "
                         f"communes), not {households:,}")
    # raise the small communes to the floor and take the households they gain from the
    # others in proportion, until none is under it
    fixed = np.zeros(len(share), bool)
    out = share / share.sum()
    for _ in range(50):
        low = ~fixed & (out < floor)
        if not low.any():
            break
        fixed |= low
        free = 1 - floor[fixed].sum()
        out = np.where(fixed, floor, share * free / share[~fixed].sum())
    return np.cumsum(out) / out.sum()


def _all_communes_commune(geo: _Geo, hh_number: np.ndarray, households: int) -> np.ndarray:
    """The commune of each original household number (1..households) under
    all_communes: consecutive numbers fill one commune after another
    (``_Geo.commune_cum``), so every commune gets its share whatever the chunking."""
    at = (np.asarray(hh_number, np.float64) - 0.5) / households
    return np.minimum(np.searchsorted(geo.commune_cum, at, side="right"), len(geo.commune_cum) - 1)


def _commune_2025_piece(geo: _Geo, comm: np.ndarray, hh_number: np.ndarray) -> np.ndarray:
    """Index into geo.piece_name of each household's 2025 commune. A split commune's
    household goes to a piece by a fixed fraction of its number (golden-ratio sequence):
    deterministic, the same in every chunk and period, no draw from the simulation's
    random streams."""
    u = np.modf(np.asarray(hh_number, np.float64) * 0.6180339887498949)[0]
    first = geo.piece_start[comm]
    n = geo.piece_count[comm]
    offset = np.zeros(len(comm), np.int64)
    last = len(geo.piece_cum) - 1
    for k in range(1, int(n.max()) if len(n) else 1):
        offset += (n > k) & (u > geo.piece_cum[np.minimum(first + k - 1, last)])
    return first + offset


# ---------------------------------------------------------------- one chunk of households
def _expit(x):
    return 1.0 / (1.0 + np.exp(-x))


# ---------------------------------------------------------------- hardship (issue 12)
# Relapse and entry into poverty are driven by a yearly hardship (illness, job loss, crop
# or disaster loss). Its chance in year t+1 is a logistic function of what the office
# records at the review of year t -- how far the recorded income is above the poverty
# line (a fragile exit), remaining deprivations (health insurance, housing, dependants),
# household size, ethnic minority, area, region -- plus the commune's own exposure (a
# commune shock the register does not record) and support received (protective in
# proportion to the programme's planted income effect, so a null programme stays null).
# A hit lowers that year's log income by a random drop and leaves the household short of
# work and food (dep_employment, dep_nutrition) that year. On top of it, the yearly
# permanent income shock, measurement noise and deprivation noise are not observable.
HARDSHIP = {
    "first_year": 2023,  # hardship years 2023..2025, from the 2022..2024 reviews
    "intercept": -4.6,
    "gap": -3.0,  # per unit of log(recorded income / poverty line), clipped below
    "gap_clip": (-0.3, 2.0),
    "deprivations": {"dep_health_insurance": 0.7, "dep_housing_quality": 0.5,
                     "dep_housing_area": 0.3, "dep_dependants": 0.6},
    "size": 0.15,  # per member above 4 (capped at 8)
    "ethnic": 0.35,
    "rural": 0.3,
    "region": {"Northern Midlands and Mountains": 0.15, "Central Highlands": 0.1,
               "North Central and Central Coast": 0.3, "Mekong River Delta": 0.2,
               "Red River Delta": -0.2, "Southeast": -0.3},
    "sd_commune": 0.35,
    "support": 2.0,  # times the programme's planted log-income effect
    "drop_min": 0.15,
    "drop_extra": 0.25,  # mean of the exponential part of the drop
    "hits": ("dep_employment", "dep_nutrition"),
    # from the first hardship year on, deprivations evolve from the recorded ones: each
    # deprived indicator is resolved with chance "resolve", each other one starts with
    # chance "onset" (so the review shows the household's whole deprivation state)
    "resolve": 0.2,
    "onset": 0.005,
}


@dataclass
class _Hardship:
    """One chunk's hardship draws: ``u`` (m, T) uniforms (hit when u < chance), ``drop``
    (m, T) log-income drops, ``fixed`` (m,) the household part of the logit."""

    u: np.ndarray
    drop: np.ndarray
    fixed: np.ndarray
    urban: np.ndarray
    seed: tuple = ()

    @classmethod
    def draw(cls, seed, chunk, geo, comm, region, size, eth, urban, m) -> "_Hardship":
        hz = HARDSHIP
        rng = np.random.default_rng(np.random.SeedSequence([seed, chunk, 12]))
        # commune exposure: one value per commune whatever the chunk
        commune_rng = np.random.default_rng(np.random.SeedSequence([seed, 10**9 + 12]))
        commune_shock = commune_rng.normal(0, hz["sd_commune"], len(geo.commune_name))
        region_eff = np.vectorize(hz["region"].get, otypes=[float])(region)
        fixed = (hz["intercept"] + hz["size"] * (np.minimum(size, 8) - 4) + hz["ethnic"] * eth
                 + hz["rural"] * ~urban + region_eff + commune_shock[comm])
        T = len(YEARS)
        u = rng.random((m, T))
        drop = hz["drop_min"] + rng.exponential(hz["drop_extra"], (m, T))
        return cls(u, drop, fixed, urban, (seed, chunk))

    @staticmethod
    def logit(fixed, urban, income, deps_t, year_idx, support):
        """Log-odds of a hardship in year year_idx+1 from the review of year_idx: recorded
        income (VND, rounded), deprivations ``deps_t`` (indicator first), support effect.
        Arrays broadcast (the oracle passes (n, R) futures)."""
        hz = HARDSHIP
        st = _std.standard_for(YEARS[year_idx])
        line = np.where(urban, st.poor_income_max["urban"], st.poor_income_max["rural"])
        gap = np.clip(np.log(income / line), *hz["gap_clip"])
        lin = fixed + hz["gap"] * gap - hz["support"] * support
        for col, b in hz["deprivations"].items():
            lin = lin + b * deps_t[DEPS.index(col)]
        return lin

    def apply(self, log_y, deps, effect):
        """Log incomes and deprivations with hardships, year by year (a hit in year t+1
        depends on the review of year t, itself after any hit in year t)."""
        log_y, deps = log_y.copy(), deps.copy()
        hit = np.zeros(log_y.shape, bool)
        for t in range(YEARS.index(HARDSHIP["first_year"]) - 1, len(YEARS) - 1):
            income = np.round(np.exp(log_y[:, t]), -3)
            chance = _expit(self.logit(self.fixed, self.urban, income, deps[:, :, t], t, effect[:, t]))
            h = self.u[:, t + 1] < chance
            log_y[h, t + 1] -= self.drop[h, t + 1]
            flip = np.random.default_rng(np.random.SeedSequence([*self.seed, 12, t + 1])).random(
                deps.shape[:2], dtype=np.float32)
            deps[:, :, t + 1] = _next_deprivations(deps[:, :, t], flip, h)
            hit[:, t + 1] = h
        return log_y, deps, hit


def _next_deprivations(deps_t, flip, hit):
    """Deprivations at the next review from those recorded now (HARDSHIP "resolve" /
    "onset"; ``flip`` uniforms broadcast like deps_t), plus the ones a hardship brings."""
    hz = HARDSHIP
    nxt = np.where(deps_t, flip >= hz["resolve"], flip < hz["onset"])
    hits = [DEPS.index(c) for c in hz["hits"]]
    nxt[hits] |= hit
    return nxt


# Simulated futures per household-review for truth_risk. Monte Carlo error, measured
# with three draw seeds (``_risk_draws``) on 300,000 households (seed 2025): the oracle's
# AUC moves by at most 0.002 (relapse within 1, 2024 exits, 180 relapses: 0.8245-0.8257;
# 2023 exits: 0.8127-0.8146; relapse within 2, 2023 exits: 0.8054-0.8064; entry within 1,
# 2024: 0.8132-0.8140), one household's probability by 0.0007-0.0019 (sd).
RISK_FUTURES = 1000
RISK_DRAW_SEED = 20251201  # the futures' random numbers (common to every household)

# What the truth at a review integrates over (issue 12 §1), beside the shocks drawn after
# it: next years' national growth. The generating process draws each year's growth from
# 2022 on independently and uniformly from the calibrated path's four yearly growths
# (``CALIBRATION["growth"][1:]``: 0.100, 0.033, 0.056, 0.027 in log income); the
# register's own path is the realisation this world drew, and no review shows the next.
GROWTH_AHEAD = tuple(CALIBRATION["growth"][1:])
# the years a commune may adopt a programme (``_geography``: adopts with the programme's
# "adopt" chance, in one of these years, each equally likely)
ADOPTION_YEARS = (2022, 2023, 2024)


def _support_logit(select, log_y_prev, eth, size, depcount_prev, urban):
    """Log-odds that the office starts a programme (its ``select`` intercept) for an
    eligible household in year s, from the review of s-1: log income below a fixed
    reference line, ethnic minority, size, deprivation count, area. One definition for
    the simulation (``_simulate_chunk``) and the truth's futures (``_support_ahead``)."""
    income_gap = np.log(np.where(urban, 2_000_000.0, 1_500_000.0)) - log_y_prev
    return (select + 3.0 * income_gap + 0.8 * eth + 0.15 * (size - 4)
            + 0.15 * depcount_prev - 0.3 * urban)


def _adoption_chance(spec: dict, review_year: int, by_year: int) -> float:
    """P(a commune that had not adopted the programme by the review of review_year has
    adopted it by by_year), from ``_geography``'s draw: adoption with chance
    spec["adopt"] in one of ``ADOPTION_YEARS``, each equally likely."""
    share = spec["adopt"] / len(ADOPTION_YEARS)
    before = sum(y <= review_year for y in ADOPTION_YEARS)
    ahead = sum(review_year < y <= by_year for y in ADOPTION_YEARS)
    return ahead * share / (1 - before * share)


def _risk_draws(futures: int, seed: int = RISK_DRAW_SEED) -> list[dict]:
    """The futures' random draws for truth_risk, one dict per step ahead: permanent
    income shock, measurement noise, the size of a hardship's income drop and the
    deprivation uniforms (``perm``, ``noise``, ``drop``, ``flip``); the year's national
    growth (``growth``, from ``GROWTH_AHEAD``); and for support that starts after the
    review, each programme's place in the office's order (``rank``), the uniform its
    acceptance is drawn against (``accept``) and, in the first step's dict only (one
    adoption per commune and future, both years), the uniform of the commune's adoption
    (``adopt``). Latin-hypercube stratified (each margin takes every 1/R quantile once,
    in an independent random order), because the same draws serve every household
    (common random numbers): a plain sample's error would be shared by all of them and
    bias the whole oracle. The hardship hit itself is not drawn (``_futures``
    integrates it exactly)."""
    from scipy.special import ndtri

    cal, hz = CALIBRATION, HARDSHIP
    rng = np.random.default_rng(np.random.SeedSequence([seed, 12]))
    R = futures
    P = len(PROGRAMS)

    def strata(*shape):  # uniforms, one per 1/R stratum along the last axis, shuffled
        mid = (np.arange(R) + 0.5) / R
        return np.stack([rng.permutation(mid) for _ in range(int(np.prod(shape[:-1], dtype=int)))]
                        ).reshape(shape)

    steps = [dict(perm=cal["sd_shock"] * ndtri(strata(R)), noise=cal["sd_noise"] * ndtri(strata(R)),
                  flip=strata(len(DEPS), R),
                  drop=hz["drop_min"] - hz["drop_extra"] * np.log1p(-strata(R)))
             for _ in range(2)]
    # drawn after the draws above, which stay those of the truth with a known future
    for d in steps:
        d["growth"] = np.asarray(GROWTH_AHEAD)[(strata(R) * len(GROWTH_AHEAD)).astype(int)]
        d["rank"] = strata(P, R).argsort(axis=0).argsort(axis=0)  # a uniformly random order
        d["accept"] = strata(P, R)
    steps[0]["adopt"] = strata(P, R)
    return steps


def _support_ahead(year, review_t, eligible, log_y_prev, depcount_prev, house, d, adopt_u):
    """Support that starts in ``year`` (after the review of ``review_t``), per household
    and future: (income effect, started). The office's rule of ``_simulate_chunk``
    replayed with the futures' own draws: an ``eligible`` household (no programme yet,
    poor or near-poor at the review before) is offered the programmes its commune has
    adopted by then in a random order and takes the first it accepts (``_support_logit``).
    A commune's adoption by the review is realised (``house["adoption"]``); a later one is
    drawn (``_adoption_chance``, the same uniform ``adopt_u`` for both years ahead)."""
    P = len(PROGRAMS)
    shape = np.broadcast_shapes(eligible.shape, (1, d["rank"].shape[1]))
    add = np.zeros(shape)
    started = np.zeros(shape, bool)
    rows = np.flatnonzero(eligible.any(axis=1))  # the others start nothing: skip them
    if not len(rows):
        return add, started
    if len(rows) < len(eligible):
        def pick(a):
            return a[rows] if np.ndim(a) == 2 and len(a) == len(eligible) else a
        sub = {k: (v[:, rows] if k == "adoption" else v[rows]) for k, v in house.items()}
        add[rows], started[rows] = _support_ahead(year, review_t, eligible[rows], pick(log_y_prev),
                                                  pick(depcount_prev), sub, d, adopt_u)
        return add, started
    best = np.full(shape, P)
    accepted = []
    # u < expit(select + rest) <=> rest > logit(u) - select: one logit for all programmes
    rest = _support_logit(0.0, log_y_prev, house["eth"], house["size"], depcount_prev, house["urban"])
    for j, spec in enumerate(PROGRAMS.values()):
        known = house["adoption"][j] > 0
        known &= house["adoption"][j] <= YEARS[review_t]
        may_adopt = house["coastal"] if spec.get("coastal") else np.ones_like(known)
        later = (adopt_u[j] < _adoption_chance(spec, YEARS[review_t], year))[None, :]
        adopted = known[:, None] | (may_adopt[:, None] & later)
        bar = np.log(d["accept"][j] / (1 - d["accept"][j])) - spec["select"]
        ok = eligible & adopted & (rest > bar[None, :])
        accepted.append(ok)
        best = np.where(ok, np.minimum(best, d["rank"][j][None, :]), best)
    for j, spec in enumerate(PROGRAMS.values()):
        take = accepted[j] & (best == d["rank"][j][None, :])
        add = np.where(take, spec["effect"][year], add)
        started |= take
    return add, started


def _risk_truth(sim: dict, frequency: str, futures: int = RISK_FUTURES, known_future: bool = False,
                draw_seed: int = RISK_DRAW_SEED) -> pd.DataFrame:
    """The true probabilities behind truth_risk.parquet for one chunk (issue 12 §1).

    Rows: each household that exited poverty at the annual review of year t (poor at
    t-1, near-poor or non-poor at t, on the register at both) -- kind "relapse" -- and
    each household near-poor at t that did not just exit -- kind "entry" -- for the
    reviews t from which the simulation has a hardship year ahead (2022..2024).
    ``p_within_k`` = P(poor at any of the annual reviews t+1..t+k | everything the
    generating process has realised by the review of t), NaN when t+k is after 2025:
    the expectation over everything drawn after it. Removals are independent of status,
    so the probability is also the one among households still on the register (followed).

    The inputs, realised by the review of t or not:
      - realised, taken as known: the household's traits (region, province, commune,
        area, ethnic minority, size), its persistent level (``base``: region, province,
        household draw), its permanent income shocks up to t, its recorded income and
        deprivations at t, the commune's hardship exposure (drawn once, before 2021),
        support in force at t (started in Q1-Q3 of t or before; its planted effect stays
        the same in later years), communes' programme adoptions up to t;
      - structural, fixed by the process and known: the ethnic catch-up trend
        (``CALIBRATION["ethnic_catch_up"]`` a year), the poverty standard of each year
        (2022-2025 standard, set by law in advance), the hardship and selection rules;
      - drawn after the review, integrated over: each later year's permanent income
        shock, measurement noise, deprivation changes, hardship (hit and drop), national
        growth (``GROWTH_AHEAD``: the generating process's own distribution, not the
        path this register drew), support starting after t (the office's selection,
        programme order and the commune's later adoptions, ``_support_ahead``).
    Pre-drawn streams that the simulation applies after t (its hardship uniforms and
    drops, deprivation uniforms, support draws, commune adoption years) never enter.

    Computed over ``futures`` futures of each household (``_futures``): whether a
    hardship strikes is integrated exactly in each future, the other draws are
    stratified and common to all households (``_risk_draws``, seed ``draw_seed``), so
    probabilities differ only through the household's state. Monte Carlo error at
    1,000 futures: ``RISK_FUTURES``.

    ``known_future=True`` is the diagnostic truth of earlier stops: the same futures
    with the realised growth path and the realised later support taken as known -- the
    register's own conditional frequencies (tests check it against them), not a
    probability at the review.

    What this oracle knows that the register at t does not show (it is the planted
    truth, not the best an office could do; benchmarks/bench_risk.py prints that best,
    the "ceiling", beside it): the household's true income level behind the recorded
    one (``base`` + ``permanent``: the review records it with independent noise of sd
    0.03 and the year's hardship drop) and the commune's hardship exposure. Measured
    with the known-future truth at 600,000 households (seed 2025, 2024 exits; the
    ceiling cross-fitted by household, ``bench_risk.py --oracle-knows``): oracle 0.829,
    ceiling 0.805; with the true income 0.826, the commune exposure 0.809, the support
    ahead 0.807, all three 0.830."""
    T = len(YEARS)
    st = sim["st1"]
    observed = np.stack([(sim["entry_q"] <= y * 4 + 3) & (sim["removal_q"] > y * 4 + 3) for y in YEARS], axis=1)
    draws = _risk_draws(futures, draw_seed)
    out = []
    first_t = YEARS.index(HARDSHIP["first_year"]) - 1
    for t in range(first_t, T - 1):
        exited = observed[:, t - 1] & observed[:, t] & (st[:, t - 1] == 0) & (st[:, t] != 0)
        near = observed[:, t] & (st[:, t] == 1) & ~exited
        for kind, mask in (("relapse", exited), ("entry", near)):
            rows = np.flatnonzero(mask)
            for lo in range(0, len(rows), 1_000):
                i = rows[lo:lo + 1_000]
                p1, p2 = _futures(sim, i, t, draws, known_future)
                out.append(pd.DataFrame({"_hh": i, "_t": t, "kind": kind, "p_within_1": p1, "p_within_2": p2}))
    if not out:
        return pd.DataFrame({"_hh": pd.Series(dtype=np.int64), "_t": pd.Series(dtype=np.int64),
                             "kind": pd.Series(dtype=object), "p_within_1": pd.Series(dtype=float),
                             "p_within_2": pd.Series(dtype=float)})
    return pd.concat(out, ignore_index=True)


def _futures(sim, i, t, draws, known_future=False):
    """P(poor at t+1) and P(poor at t+1 or t+2) for households ``i`` from year index t.

    In every future each year is followed both with and without a hardship, weighted by
    the hardship's chance in that branch (its chance at t+2 depends on the state the
    branch reached at t+1): the hit is integrated exactly instead of drawn, which
    removes most of the Monte Carlo error at the small probabilities that matter.
    Growth and support after t come from the futures' draws (``known_future``: from
    the register's realised path and support instead)."""
    T = len(YEARS)
    state = sim["risk_state"]
    path = np.cumsum(CALIBRATION["growth"])
    catch_up = CALIBRATION["ethnic_catch_up"] * np.arange(T)
    house = {"urban": sim["urban"][i][:, None], "eth": sim["eth"][i][:, None],
             "size": sim["size"][i][:, None], "adoption": state["adoption"][:, i],
             "coastal": state["coastal"][i]}
    urban, eth = house["urban"], house["eth"]
    fixed = state["hardship"].fixed[i][:, None]
    effect = state["effect"][i]
    base = state["base"][i][:, None]
    support_t = effect[:, t][:, None]  # in force at the review: started by then
    start = state["support_start"][i]
    supported = ((start > 0) & (start <= YEARS[t]))[:, None]

    def ahead(y, income, deps, perm, grown, support_before, support_y, d):
        """Chance of a hardship in year y from the state of review y-1 (support in force
        then: ``support_before``), and per branch (no hit, hit): (status codes at y, log
        income, recorded income, deprivations at y)."""
        chance = _expit(_Hardship.logit(fixed, urban, income, deps, y - 1, support_before))
        perm = perm + d["perm"][None, :]
        level = base + perm + grown + eth * catch_up[y] + support_y + d["noise"][None, :]
        branches = []
        calm = _next_deprivations(deps, d["flip"][:, None, :], False)
        for hit in (False, True):
            log_y = level - d["drop"][None, :] if hit else level
            nxt = calm
            if hit:  # a hardship adds its deprivations to the same draws
                nxt = calm.copy()
                nxt[[DEPS.index(c) for c in HARDSHIP["hits"]]] = True
            income_y = np.round(np.exp(log_y), -3)
            codes = _classify_codes(YEARS[y], np.broadcast_to(urban, income_y.shape), income_y,
                                    nxt.sum(axis=0), nxt)
            branches.append((codes, log_y, income_y, nxt))
        return chance, perm, branches

    first_draws, second_draws = draws
    income = sim["income"][i, t][:, None]
    deps = sim["deps"][:, i, t][:, :, None]
    perm = state["permanent"][i, t][:, None]
    if known_future:
        grown1, support1, started1 = path[t + 1], effect[:, t + 1][:, None], None
    else:
        grown1 = path[t] + first_draws["growth"][None, :]
        eligible = ~supported & (sim["st1"][i, t] <= 1)[:, None]
        add, started1 = _support_ahead(YEARS[t + 1], t, eligible, state["log_income"][i, t][:, None],
                                       deps.sum(axis=0), house, first_draws, first_draws["adopt"])
        support1 = support_t + add
    c1, perm1, first = ahead(t + 1, income, deps, perm, grown1, support_t, support1, first_draws)
    p1 = ((1 - c1) * (first[0][0] == 0) + c1 * (first[1][0] == 0)).mean(axis=1)
    if t + 2 > T - 1:
        return p1, np.full(len(i), np.nan)
    p2 = 0.0
    for h1, weight in ((0, 1 - c1), (1, c1)):
        codes1, log_y1, income1, deps1 = first[h1]
        if known_future:
            grown2, support2 = path[t + 2], effect[:, t + 2][:, None]
        else:
            grown2 = grown1 + second_draws["growth"][None, :]
            eligible = ~(supported | started1) & (codes1 <= 1)
            add, _ = _support_ahead(YEARS[t + 2], t, eligible, log_y1, deps1.sum(axis=0), house,
                                    second_draws, first_draws["adopt"])
            support2 = support1 + add
        c2, _, second = ahead(t + 2, income1, deps1, perm1, grown2, support1, support2, second_draws)
        poor2 = (1 - c2) * (second[0][0] == 0) + c2 * (second[1][0] == 0)
        p2 = p2 + weight * np.where(codes1 == 0, 1.0, poor2)
    return p1, p2.mean(axis=1)


def _simulate_chunk(chunk: int, first_id: int, n: int, total: int, seed: int, geo: _Geo) -> dict:
    """Simulate n households (global numbers first_id..first_id+n-1) plus the households
    their splits create. Returns a dict of per-household arrays (shape (m,) or (m, 5))."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, chunk]))
    cal = CALIBRATION
    prov = geo.provinces
    T = len(YEARS)
    # --- static characteristics of the original households
    p_idx = rng.choice(len(prov), n, p=prov.weight.to_numpy())
    u = rng.random(n)
    comm = np.empty(n, np.int64)
    for i in np.unique(p_idx):  # commune inside the province
        m = p_idx == i
        s, c = geo.commune_start[i], geo.commune_count[i]
        cdf = np.cumsum(geo.commune_weight[s:s + c])
        comm[m] = s + np.minimum(np.searchsorted(cdf, u[m] * cdf[-1]), c - 1)
    if geo.commune_cum is not None:  # all_communes: laid out by household number
        comm = _all_communes_commune(geo, first_id + np.arange(n, dtype=np.int64), total)
        p_idx = geo.commune_province[comm]
    region = prov.region.to_numpy()[p_idx]
    eth = rng.random(n) < prov.ethnic_share.to_numpy()[p_idx]
    size = np.clip(rng.poisson(np.where(eth, 3.6, 2.7), n) + 1, 1, 12)
    merit = rng.random(n) < 0.03
    alpha = rng.normal(0, cal["sd_household"], n)
    dep_latent = rng.normal(0, 0.6, n)
    hh_number = first_id + np.arange(n, dtype=np.int64)
    parent = np.full(n, -1, np.int64)
    entry_q = np.full(n, FIRST_Q, np.int64)

    # --- removals: quarter of removal (2022Q1..2025Q4) or none; reason
    q_rate = 1 - (1 - cal["removal_rate_year"]) ** 0.25
    removal_q = FIRST_Q + rng.geometric(q_rate, n)
    removal_q = np.where(removal_q <= LAST_Q, removal_q, 10**9)
    reason = rng.choice(4, n, p=[0.4, 0.4, 0.1, 0.1])
    reason = np.where((reason == 3) & (size < 2), 1, reason)  # a single person cannot split
    split = (removal_q < LAST_Q) & (reason == 3)
    # --- households created by splits: two per split, entering the next quarter
    ps = np.flatnonzero(split)
    k = len(ps)
    if k:
        kids = np.repeat(ps, 2)
        kid_size = np.maximum(1, np.where(np.arange(2 * k) % 2 == 0, size[kids] // 2, size[kids] - size[kids] // 2))
        p_idx = np.concatenate([p_idx, p_idx[kids]])
        comm = np.concatenate([comm, comm[kids]])
        region = np.concatenate([region, region[kids]])
        eth = np.concatenate([eth, eth[kids]])
        size = np.concatenate([size, kid_size])
        merit = np.concatenate([merit, merit[kids]])
        alpha = np.concatenate([alpha, alpha[kids] + rng.normal(0, 0.15, 2 * k)])
        dep_latent = np.concatenate([dep_latent, dep_latent[kids] + rng.normal(0, 0.2, 2 * k)])
        # new household numbers: after all original ones, 2 per parent number (unique,
        # chunk-independent)
        hh_number = np.concatenate([hh_number, total + 2 * hh_number[kids] + np.arange(2 * k) % 2])
        parent = np.concatenate([parent, kids])
        entry_q = np.concatenate([entry_q, removal_q[kids] + 1])
        kid_removal = entry_q[n:] + rng.geometric(q_rate, 2 * k)
        removal_q = np.concatenate([removal_q, np.where(kid_removal <= LAST_Q, kid_removal, 10**9)])
        kid_reason = rng.choice(3, 2 * k, p=[0.3, 0.6, 0.1])  # death, migration, merger
        reason = np.concatenate([reason, kid_reason])
    m = len(p_idx)
    urban = geo.commune_urban[comm]

    # --- income without programme effects (log), by review year
    base = (np.vectorize(cal["region_base"].get, otypes=[float])(region)
            + prov.level.to_numpy()[p_idx] + cal["urban_premium"] * urban
            - cal["ethnic_gap"] * eth + cal["size_effect"] * (size - 4) + alpha)
    shocks = rng.normal(0, cal["sd_shock"], (m, T))
    shocks[:, 0] = 0.0
    permanent = np.cumsum(shocks, axis=1)
    growth = np.cumsum(cal["growth"])
    catch_up = cal["ethnic_catch_up"] * np.arange(T)
    noise = rng.normal(0, cal["sd_noise"], (m, T))
    log_y0 = base[:, None] + permanent + growth[None, :] + np.outer(eth, catch_up) + noise

    # --- deprivations (same with or without support: programmes act on income)
    dep_region = np.vectorize(cal["dep_region"].get, otypes=[float])(region)
    dep_level = dep_latent + dep_region + 0.9 * eth - 1.2 * alpha - 0.2 * urban
    score = dep_level[:, None] - 0.8 * permanent - np.asarray(cal["dep_trend"])[None, :]
    deps = np.zeros((len(DEPS), m, T), bool)
    for j, col in enumerate(DEPS):
        own = rng.normal(0, 0.8, m).astype(np.float32)
        yearly = rng.normal(0, cal["sd_dep_noise"], (m, T)).astype(np.float32)
        deps[j] = (score + own[:, None] + yearly) > (cal["dep_threshold"] + DEP_OFFSET[col])

    # --- hardship (issue 12): a yearly shock whose chance depends on what the review saw
    hardship = _Hardship.draw(seed, chunk, geo, comm, region, size, eth, urban, m)
    log_y_pre, deps_pre = log_y0, deps
    log_y0, deps, _ = hardship.apply(log_y_pre, deps_pre, np.zeros((m, T)))
    depcount = deps.sum(axis=0)

    # --- classification helpers
    def status_codes(log_y, year_idx, std_period, deps=deps):
        """0 poor, 1 near-poor, 2 non-poor of values of review year_idx under the
        standard in force at std_period."""
        income = np.round(np.exp(log_y[:, year_idx]), -3)
        return _classify_codes(std_period, urban, income, deps[:, :, year_idx].sum(axis=0),
                               deps[:, :, year_idx])

    st0 = np.stack([status_codes(log_y0, t, YEARS[t]) for t in range(T)], axis=1)

    # --- support: staggered commune adoption, selection on observables
    program = np.full(m, -1, np.int64)
    start_q = np.zeros(m, np.int64)
    effect = np.zeros((m, T))
    codes = list(PROGRAMS)
    for s in (2022, 2023, 2024, 2025):
        t = YEARS.index(s)
        q_start = s * 4 + rng.integers(0, 3, m)  # Q1..Q3 of s
        base_ok = ((st0[:, t - 1] <= 1) & (program < 0) & (entry_q <= (s - 1) * 4 + 3)
                   & (removal_q > q_start))
        for pi in rng.permutation(len(codes)):
            code = codes[pi]
            spec = PROGRAMS[code]
            adopted = geo.adoption[code][comm]
            ok = base_ok & (adopted > 0) & (adopted <= s) & (program < 0)
            lin = _support_logit(spec["select"], log_y0[:, t - 1], eth, size, depcount[:, t - 1], urban)
            pick = ok & (rng.random(m) < _expit(lin))
            program[pick] = pi
            start_q[pick] = q_start[pick]
            effect[pick, t:] = spec["effect"][s]
    treated = program >= 0
    # the supported path: same hardship draws (common random numbers), programme effect on
    # income and on the hardship chance; identical to the untreated path without support
    log_y1, deps1, hit1 = hardship.apply(log_y_pre + effect, deps_pre, effect)
    st1 = st0.copy()
    if treated.any():
        for t in range(T):
            st1[:, t] = status_codes(log_y1, t, YEARS[t], deps1)

    # --- support records
    idx = np.flatnonzero(treated)
    lo = np.array([PROGRAMS[codes[p]]["amount"][0] for p in program[idx]])
    hi = np.array([PROGRAMS[codes[p]]["amount"][1] for p in program[idx]])
    amount = np.round(lo + (hi - lo) * rng.random(len(idx)), -5)
    qlo = np.array([PROGRAMS[codes[p]]["quarters"][0] for p in program[idx]])
    qhi = np.array([PROGRAMS[codes[p]]["quarters"][1] for p in program[idx]])
    end_q = start_q[idx] + qlo + (rng.random(len(idx)) * (qhi - qlo + 1)).astype(int) - 1

    # --- ad-hoc updates: a share of status changes is recorded early (Q1–Q3 of the year)
    early_q = np.full((m, T), 10**9, np.int64)
    for t in range(1, T):
        s = YEARS[t]
        changed = st1[:, t] != st1[:, t - 1]
        early = changed & (rng.random(m) < cal["early_update_share"])
        q = s * 4 + rng.integers(0, 3, m)
        q = np.where(treated & (start_q // 4 == s), np.maximum(q, start_q), q)  # not before support
        early_q[:, t] = np.where(early & (q <= s * 4 + 2), q, 10**9)

    return dict(
        n_original=n, hh_number=hh_number, parent=parent, p_idx=p_idx, comm=comm, urban=urban,
        eth=eth, merit=merit, size=size, entry_q=entry_q, removal_q=removal_q, reason=reason,
        income=np.round(np.exp(log_y1), -3), deps=deps1, st1=st1, st0=st0, early_q=early_q,
        program=program, start_q=start_q, support_idx=idx, amount=amount, end_q=end_q,
        removal_split_kids=k, rng_state=rng, hardship=hit1,
        risk_state=dict(base=base, permanent=permanent, effect=effect, hardship=hardship,
                        log_income=log_y1, support_start=np.where(treated, start_q // 4, 0),
                        adoption=np.stack([geo.adoption[code][comm] for code in PROGRAMS]),
                        coastal=prov.coastal.to_numpy()[p_idx]),
    )


def _classify_codes(std_period, urban, income, depcount, dep_matrix):
    """Vectorised classification of one review's values (codes 0/1/2) through the
    standards data file (same rule as povdyn.standards.classify)."""
    st = _std.standard_for(std_period)
    cols = st.indicators
    if len(cols) != len(DEPS):  # e.g. the 2016–2021 standard's 10 stand-in indicators
        pick = [DEPS.index(c) for c in cols]
        depcount = dep_matrix[pick].sum(axis=0)
    poor_max = np.where(urban, st.poor_income_max["urban"], st.poor_income_max["rural"])
    near_max = np.where(urban, st.near_poor_income_max["urban"], st.near_poor_income_max["rural"])
    below = income < poor_max if st.poor_bound == "lt" else income <= poor_max
    band = ~below & (income <= near_max)
    need_band = st.min_deprivations_in_band if st.min_deprivations_in_band is not None else 10**6
    poor = (below & (depcount >= st.min_deprivations_below_line)) | (band & (depcount >= need_band))
    near = (below | band) & ~poor
    return np.where(poor, 0, np.where(near, 1, 2)).astype(np.int8)


# ---------------------------------------------------------------- rows of a chunk
_STATUS = np.array(["poor", "near_poor", "non_poor", None], dtype=object)
_REASON = np.array(list(REMOVAL_REASONS), dtype=object)


def _standard_period(q: int):
    return f"{q // 4}Q{q % 4 + 1}"


def _rows(sim: dict, geo: _Geo, frequency: str) -> dict:
    """Row-level arrays (indices into household arrays) for the chosen frequency."""
    m = len(sim["hh_number"])
    T = len(YEARS)
    periods = QUARTERS if frequency == "quarter" else tuple(y * 4 + 3 for y in YEARS)
    hh_list, q_list, rec_list, status_list, removal_list = [], [], [], [], []
    for q in periods:
        y = q // 4
        t = YEARS.index(y)
        is_review = q % 4 == 3
        if frequency == "quarter":
            alive = (sim["entry_q"] <= q) & (sim["removal_q"] > q)
            removed_now = sim["removal_q"] == q
        else:  # annual: removals during the year land on that year's review row
            alive = (sim["entry_q"] <= q) & (sim["removal_q"] > q)
            # (only households seen at an earlier review: one that formed and left within
            # the same year never reaches the annual lists)
            removed_now = (sim["removal_q"] // 4 == y) & (sim["entry_q"] <= q - 4)
        if is_review:
            rec = np.full(m, t)
        else:
            # last review's values unless updated ad hoc already; new households are
            # assessed when they form
            rec = np.where((sim["early_q"][:, t] <= q) | (sim["entry_q"] > (y - 1) * 4 + 3), t, t - 1)
        std_q = q
        # status under the standard in force at q
        st = _status_at(sim, rec, std_q)
        for mask, is_removal in ((alive, False), (removed_now, True)):
            idx = np.flatnonzero(mask)
            hh_list.append(idx)
            q_list.append(np.full(len(idx), q, np.int64))
            rec_list.append(rec[idx])
            status_list.append(np.full(len(idx), 3, np.int8) if is_removal else st[idx])
            removal_list.append(np.full(len(idx), is_removal))
    hh = np.concatenate(hh_list)
    qq = np.concatenate(q_list)
    order = np.lexsort((qq, sim["hh_number"][hh]))
    return dict(hh=hh[order], q=qq[order], rec=np.concatenate(rec_list)[order],
                status=np.concatenate(status_list)[order], removal=np.concatenate(removal_list)[order])


def _status_at(sim, rec, q):
    """Status codes of each household for recorded-year values `rec` under the standard
    in force at quarter q."""
    st = np.empty(len(rec), np.int8)
    for t in np.unique(rec):
        m = rec == t
        if YEARS[t] * 4 + 3 == q or _std.standard_for(YEARS[t]).standard_id == _std.standard_for(_standard_period(q)).standard_id:
            st[m] = sim["st1"][m, t]
        else:  # the review's values re-read under the standard now in force
            st[m] = _classify_codes(_standard_period(q), sim["urban"][m], sim["income"][m, t],
                                    sim["deps"][:, m, t].sum(axis=0), sim["deps"][:, m, t])
    return st


def _identifiers(sim: dict, geo: _Geo, seed: int, chunk: int) -> dict:
    """Fake direct identifiers per household as Arrow string arrays (deterministic per
    chunk): head_name, id_card (12 digits: 0 + province code, sex/century, birth year,
    6 digits), phone (10 digits), address."""
    import pyarrow as pa
    import pyarrow.compute as pc

    rng = np.random.default_rng(np.random.SeedSequence([seed, chunk, 7]))
    m = len(sim["hh_number"])

    def pick(words, n_idx):
        return pa.array(words, pa.string()).take(pa.array(n_idx))

    fam_kinh = rng.integers(0, len(_FAMILY), m)
    fam_em = rng.integers(0, len(_FAMILY_EM), m)
    fam = pc.if_else(pa.array(sim["eth"]), pick(_FAMILY_EM, fam_em), pick(_FAMILY, fam_kinh))
    mid = pick(_MIDDLE, rng.integers(0, len(_MIDDLE), m))
    giv = pick(_GIVEN, rng.integers(0, len(_GIVEN), m))
    name = pc.binary_join_element_wise(fam, mid, giv, " ")
    code = geo.provinces.old_code.astype(int).to_numpy()[sim["p_idx"]].astype(np.int64)
    number = (code * 10**9 + rng.integers(0, 4, m) * 10**8 + rng.integers(40, 100, m) * 10**6
              + rng.integers(0, 10**6, m))
    id_card = pc.utf8_lpad(pa.array(number).cast(pa.string()), 12, "0")
    prefixes = np.array([32, 33, 34, 35, 36, 37, 38, 39, 86, 90, 91, 94, 96, 97, 98], np.int64)
    phone_no = prefixes[rng.integers(0, len(prefixes), m)] * 10**7 + rng.integers(0, 10**7, m)
    phone = pc.utf8_lpad(pa.array(phone_no).cast(pa.string()), 10, "0")
    mekong = geo.provinces.region.to_numpy()[sim["p_idx"]] == "Mekong River Delta"
    hamlet = pick(["Thôn", "Ấp", "Tổ"], np.where(sim["urban"], 2, np.where(mekong, 1, 0)))
    no = pa.array(rng.integers(1, 30, m)).cast(pa.string())
    house = pc.binary_join_element_wise("Số ", pa.array(rng.integers(1, 300, m)).cast(pa.string()), "")
    commune = pa.array(geo.commune_name, pa.string()).take(pa.array(sim["comm"]))
    province = pa.array(geo.provinces.old_province.to_numpy(), pa.string()).take(pa.array(sim["p_idx"]))
    place = pc.binary_join_element_wise(pc.binary_join_element_wise(hamlet, no, " "), commune, province, ", ")
    address = pc.if_else(pa.array(sim["urban"]), pc.binary_join_element_wise(house, place, ", "), place)
    return dict(head_name=name, id_card=id_card, phone=phone, address=address)


def _hh_ids(numbers: np.ndarray):
    """Raw household ids "HH00012345" (Arrow strings)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    digits = pc.utf8_lpad(pa.array(np.asarray(numbers, np.int64)).cast(pa.string()), 8, "0")
    return pc.binary_join_element_wise("HH", digits, "")


def _table(sim: dict, rows: dict, ident: dict, geo: _Geo, frequency: str):
    """The canonical panel rows of one chunk as an Arrow table (strings gathered from
    small per-household / per-unit arrays, so a 1M-household chunk stays light)."""
    import pyarrow as pa

    hh, q, rec = rows["hh"], rows["q"], rows["rec"]
    prov = geo.provinces
    n_prov = len(prov)
    p = sim["p_idx"][hh]
    take_hh = pa.array(hh)
    if frequency == "quarter":
        period = pa.array([_standard_period(x) for x in QUARTERS], pa.string()).take(pa.array(q - FIRST_Q))
    else:
        period = pa.array((q // 4).astype(np.int64))
    names = pa.array(list(prov.old_province) + list(prov.province_2025), pa.string())
    removal = rows["removal"]
    reason = np.where(removal, sim["reason"][hh], len(REMOVAL_REASONS))
    cols = {
        "household_id": _hh_ids(sim["hh_number"]).take(take_hh),
        "period": period,
        "status": pa.array(["poor", "near_poor", "non_poor", None], pa.string()).take(pa.array(rows["status"])),
        "province": names.take(pa.array(p + n_prov * (q >= REFORM_Q))),
        "province_2025": pa.array(list(prov.province_2025), pa.string()).take(pa.array(p)),
        "region": pa.array(list(prov.region), pa.string()).take(pa.array(p)),
        "district": pa.array(list(geo.commune_district) + [None], pa.string()).take(
            pa.array(np.where(q >= REFORM_Q, len(geo.commune_district), sim["comm"][hh]))),
        "commune": pa.array(list(geo.commune_name) + list(geo.piece_name), pa.string()).take(
            pa.array(np.where(q >= REFORM_Q, len(geo.commune_name)
                              + _commune_2025_piece(geo, sim["comm"][hh], sim["hh_number"][hh]),
                              sim["comm"][hh]))),
        "area": pa.array(["rural", "urban"], pa.string()).take(pa.array(sim["urban"][hh].astype(np.int8))),
        "ethnic_minority": pa.array(sim["eth"][hh]),
        "meritorious": pa.array(sim["merit"][hh]),
        "household_size": pa.array(sim["size"][hh].astype(np.int64)),
        "income_pc_month": pa.array(sim["income"][hh, rec].astype(np.float64)),
    }
    for j, col in enumerate(DEPS):
        cols[col] = pa.array(sim["deps"][j][hh, rec])
    cols["removal_reason"] = pa.array(list(REMOVAL_REASONS) + [None], pa.string()).take(pa.array(reason))
    for k, v in ident.items():
        cols[k] = v.take(take_hh)
    return pa.table(cols)


def _frame(sim: dict, rows: dict, ident: dict, geo: _Geo, frequency: str) -> pd.DataFrame:
    """The canonical panel rows of one chunk as a pandas DataFrame (plain object strings)."""
    return _table(sim, rows, ident, geo, frequency).to_pandas()


def _support_frame(sim: dict, frequency: str) -> pd.DataFrame:
    idx = sim["support_idx"]
    codes = list(PROGRAMS)
    if frequency == "quarter":
        start = [_standard_period(q) for q in sim["start_q"][idx]]
        end = [_standard_period(q) for q in sim["end_q"]]
    else:
        start = (sim["start_q"][idx] // 4).astype(np.int64)
        end = (sim["end_q"] // 4).astype(np.int64)
    df = pd.DataFrame({
        "household_id": _hh_ids(sim["hh_number"][idx]).to_pandas(),
        "program": np.array(codes, dtype=object)[sim["program"][idx]],
        "start_period": start,
        "end_period": end,
        "amount_vnd": sim["amount"].astype(float),
    })
    return df.sort_values(["household_id", "program"], kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------- truth
def _truth_counts(sim: dict) -> dict:
    """Per programme and cohort: sums needed for the realised ATT (so chunks add up)."""
    out = {}
    codes = list(PROGRAMS)
    T = len(YEARS)
    idx = sim["support_idx"]
    # observed at review year t: entered by then and not removed by then
    for i_code, code in enumerate(codes):
        sel = idx[sim["program"][idx] == i_code]
        for s in (2022, 2023, 2024, 2025):
            ids = sel[sim["start_q"][sel] // 4 == s]
            t0 = YEARS.index(s) - 1
            for k in (1, 2):
                if t0 + k >= T or not len(ids):
                    continue
                last_q = YEARS[t0 + k] * 4 + 3
                observed = (sim["removal_q"][ids] > last_q) & (sim["entry_q"][ids] <= YEARS[t0] * 4 + 3)
                base = (sim["st1"][ids, t0] == 0) & observed
                ids_k = ids[base]
                y1 = (sim["st1"][ids_k, t0 + 1:t0 + k + 1] != 0).all(axis=1)
                y0 = (sim["st0"][ids_k, t0 + 1:t0 + k + 1] != 0).all(axis=1)
                key = (code, s, k)
                out[key] = dict(n=int(len(ids_k)), y1=int(y1.sum()), y0=int(y0.sum()))
            out[(code, s, "records")] = dict(n=int(len(ids)))
    return out


def _truth(counts: dict, households: int, seed: int, frequency: str, calibration: dict) -> dict:
    programs = {}
    for code, spec in PROGRAMS.items():
        by_cohort = {}
        tot = {1: [0, 0, 0], 2: [0, 0, 0]}
        n_records = 0
        for s in (2022, 2023, 2024, 2025):
            n_records += counts.get((code, s, "records"), {}).get("n", 0)
            entry = {"income_effect_log": spec["effect"][s],
                     "n_records": counts.get((code, s, "records"), {}).get("n", 0)}
            for k in (1, 2):
                c = counts.get((code, s, k))
                if c is None:
                    continue
                entry[f"k{k}"] = (c["y1"] - c["y0"]) / c["n"] if c["n"] else None
                entry[f"n_k{k}"] = c["n"]
                entry[f"sustained_exit_treated_k{k}"] = c["y1"] / c["n"] if c["n"] else None
                entry[f"sustained_exit_counterfactual_k{k}"] = c["y0"] / c["n"] if c["n"] else None
                for j, v in enumerate((c["n"], c["y1"], c["y0"])):
                    tot[k][j] += v
            by_cohort[str(s)] = entry
        att = {f"k{k}": ((tot[k][1] - tot[k][2]) / tot[k][0] if tot[k][0] else None) for k in (1, 2)}
        programs[code] = {
            "kind": spec["kind"],
            "income_effect_log": {str(s): v for s, v in spec["effect"].items()},
            "att_sustained_exit": att,
            "att_by_cohort": by_cohort,
            "n_treated": tot[2][0],
            "n_treated_k1": tot[1][0],
            "n_support_records": n_records,
        }
    return {
        "outcome_definition": (
            "sustained exit within k annual reviews: the household is poor at the baseline "
            "annual review t0 (the last Q4 review before its support starts, i.e. start year - 1; "
            "for annual data the year before the start year) and not poor at every annual review "
            "t0+1, ..., t0+k. ATT = mean over supported households poor at t0 and still on the "
            "register at t0+k of [outcome with support] - [outcome without support], the latter "
            "simulated with the same random numbers (same shocks, no programme effect). "
            "k2 is the headline (k=2), k1 also given. A difference in probabilities."),
        "in_words": {
            code: _in_words(code, programs[code]) for code in PROGRAMS
        },
        "programs": programs,
        "calibration": calibration,
        "generator": {"households": households, "seed": seed, "frequency": frequency,
                      "chunk": CHUNK, "module": "povdyn.synth"},
    }


def _in_words(code: str, p: dict) -> str:
    att = p["att_sustained_exit"].get("k2")
    pts = "n/a" if att is None else f"{100 * att:+.1f} percentage points"
    kinds = {
        "effective": "clearly effective: raises the chance of a sustained exit (2 reviews)",
        "null": "no effect at all: supported households exit exactly as they would have without it",
        "fading": "fading: large effect for the 2022 cohort, smaller for 2023, none for 2024",
        "moderate": "moderately effective",
    }
    return f"{code}: {kinds[p['kind']]}; realised ATT on sustained exit within 2 reviews {pts} (n={p['n_treated']})."


# ---------------------------------------------------------------- calibration summary
def _calibration_counts(sim: dict, geo: _Geo) -> dict:
    """Counts (additive over chunks) of statuses per review year, by region and ethnicity,
    and of exits and relapses, from the annual reviews of this chunk."""
    T = len(YEARS)
    out = {}
    region_names, region_of_prov = np.unique(geo.provinces.region.to_numpy(), return_inverse=True)
    region = region_of_prov[sim["p_idx"]]
    st = sim["st1"]
    observed = np.stack([(sim["entry_q"] <= y * 4 + 3) & (sim["removal_q"] > y * 4 + 3) for y in YEARS], axis=1)
    R = len(region_names)
    for t, y in enumerate(YEARS):
        o = observed[:, t]
        key = np.where(o, region * 3 + st[:, t], -1)
        cnt = np.bincount(key[o], minlength=3 * R).reshape(R, 3)
        for r, name in enumerate(region_names):
            out[(name, y)] = (int(cnt[r].sum()), int(cnt[r, 0]), int(cnt[r, 1]))
        tot = cnt.sum(axis=0)
        out[("all", y)] = (int(tot.sum()), int(tot[0]), int(tot[1]))
        m = o & sim["eth"]
        out[("ethnic_minority", y)] = (int(m.sum()), int((m & (st[:, t] == 0)).sum()), int((m & (st[:, t] == 1)).sum()))
    for t in range(1, T - 1):
        ex = observed[:, t - 1] & observed[:, t] & (st[:, t - 1] == 0) & (st[:, t] != 0)
        fol = ex & observed[:, t + 1]
        rel = fol & (st[:, t + 1] == 0)
        out[("relapse", YEARS[t])] = (int(fol.sum()), int(rel.sum()))
    return out


def _calibration_table(counts: dict) -> dict:
    targets = {2022: (4.03, 3.49), 2023: (2.93, 2.78), 2024: (1.93, 2.13), 2025: (1.3, 2.2)}
    res = {"national": {}, "regions": {}, "ethnic_minority": {}, "relapse_share_of_exits": {}}
    for (key, y), v in counts.items():
        if key == "relapse":
            res["relapse_share_of_exits"][str(y)] = {"exits_followed": v[0], "relapsed": v[1],
                                                     "share": v[1] / v[0] if v[0] else None}
            continue
        n, poor, near = v
        rec = {"households": n, "poor_share": poor / n if n else None, "near_poor_share": near / n if n else None}
        if key == "all":
            if y in targets:
                rec["target_poor_share"] = targets[y][0] / 100
                rec["target_near_poor_share"] = targets[y][1] / 100
            res["national"][str(y)] = rec
        elif key == "ethnic_minority":
            res["ethnic_minority"][str(y)] = rec
        else:
            res["regions"].setdefault(key, {})[str(y)] = rec
    res["note"] = ("targets: domain.md national figures (2022 4.03%/3.49%, 2023 2.93%/2.78%, "
                   "2024 1.93%/2.13%, 2025 ≈1.3%/≈2.2%); 2021 is the 2021 review under the "
                   "2016–2021 standard; relapse = poor at the next annual review after an exit")
    return res


def _add(acc: dict, new: dict) -> None:
    for k, v in new.items():
        if isinstance(v, dict):
            a = acc.setdefault(k, {kk: 0 for kk in v})
            for kk, vv in v.items():
                a[kk] += vv
        else:
            a = acc.get(k)
            acc[k] = v if a is None else tuple(x + y for x, y in zip(a, v))


# ---------------------------------------------------------------- public API
def _chunks(households: int):
    for c, start in enumerate(range(0, households, CHUNK)):
        yield c, start, min(CHUNK, households - start)


def generate(households: int, seed: int, frequency: str = "quarter", all_communes: bool = False,
             risk_truth: bool = True) -> SynthRegister:
    """Generate a synthetic register in memory (see the module docstring).

    ``.panel``: canonical columns (household_id, period, status, province, province_2025,
    region, commune, area, ethnic_minority, meritorious, household_size, income_pc_month,
    the 12 dep_* indicators, removal_reason) plus the raw identifiers head_name, id_card,
    phone, address (ingest drops them); raw ids "HH00012345". Sorted by household and
    period. ``.support``: household_id, program, start_period, end_period, amount_vnd.
    ``.truth``: planted effects, realised ATTs and the calibration table.
    For registers beyond a few million households use :func:`povdyn.synth.write_demo` with
    fmt="parquet" (streams chunk by chunk). all_communes: every 2025 commune has
    households (``_geography``). risk_truth=False: no ``.truth_risk`` (None; it is the
    costly part of the truths, for runs that only time the register's use)."""
    _check_args(households, frequency)
    geo = _geography(households, seed, all_communes)
    frames, sups, tcounts, ccounts, risks = [], [], {}, {}, []
    for c, start, n in _chunks(households):
        sim = _simulate_chunk(c, start + 1, n, households, seed, geo)
        if risk_truth:
            risks.append(risk_truth_frame(sim, frequency))
        rows = _rows(sim, geo, frequency)
        ident = _identifiers(sim, geo, seed, c)
        frames.append(_frame(sim, rows, ident, geo, frequency))
        sups.append(_support_frame(sim, frequency))
        _add(tcounts, _truth_counts(sim))
        _add(ccounts, _calibration_counts(sim, geo))
    panel = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    support = pd.concat(sups, ignore_index=True) if len(sups) > 1 else sups[0]
    truth = _truth(tcounts, households, seed, frequency, _calibration_table(ccounts))
    truth_risk = (None if not risks else pd.concat(risks, ignore_index=True) if len(risks) > 1 else risks[0])
    return SynthRegister(panel=panel, support=support, truth=truth, adoption=adoption_frame(geo),
                         truth_risk=truth_risk)


def adoption_frame(geo: _Geo) -> pd.DataFrame:
    """The commune programme adoption register: one row per commune and programme with
    province (pre-2025 name), province_2025, district (pre-2025: it tells same-named
    communes of a province apart), commune, program and adoption_year (the year
    the commune adopted the programme; <NA> = never). Adoption years are drawn at random
    per commune in ``_geography`` (independent of the communes' poverty trends), which
    is what the commune event study needs as its cohort (povdyn.programs)."""
    prov = geo.provinces.iloc[geo.commune_province]
    parts = []
    for code, years in geo.adoption.items():
        parts.append(pd.DataFrame({
            "province": prov["old_province"].to_numpy(), "province_2025": prov["province_2025"].to_numpy(),
            "district": geo.commune_district, "commune": geo.commune_name, "program": code,
            "adoption_year": pd.array(np.where(years > 0, years, 0), dtype="Int64"),
        }))
    out = pd.concat(parts, ignore_index=True)
    out.loc[out["adoption_year"] == 0, "adoption_year"] = pd.NA
    return out


def risk_truth_frame(sim: dict, frequency: str, **options) -> pd.DataFrame:
    """truth_risk rows of one chunk (issue 12 §1): ``household_id`` (the raw code as in
    the register; povdyn.privacy.pseudonymise maps it to the processed id), ``period``
    (the annual review: int year, or "YYYYQ4" for quarterly snapshots), ``kind``
    ("relapse": exited poverty at that review; "entry": near-poor there without having
    just exited), ``p_within_1``, ``p_within_2`` (true probabilities of being poor at
    any of the next 1 / 2 annual reviews; NaN past 2025). See ``_risk_truth`` (and its
    ``options``: ``known_future``, ``draw_seed``, ``futures``)."""
    r = _risk_truth(sim, frequency, **options)
    years = np.array(YEARS)[r["_t"].to_numpy()]
    period = years.astype(np.int64) if frequency == "year" else np.array([f"{y}Q4" for y in years], dtype=object)
    df = pd.DataFrame({
        "household_id": _hh_ids(sim["hh_number"][r["_hh"].to_numpy()]).to_pandas(),
        "period": period,
        "kind": r["kind"].astype(object).to_numpy(),
        "p_within_1": r["p_within_1"].to_numpy(),
        "p_within_2": r["p_within_2"].to_numpy(),
    })
    return df.sort_values(["household_id", "period", "kind"], kind="stable").reset_index(drop=True)


def _check_args(households, frequency):
    if frequency not in ("quarter", "year"):
        raise ValueError(f"frequency must be 'quarter' or 'year', not {frequency!r}")
    if int(households) < 1:
        raise ValueError("households must be at least 1")

