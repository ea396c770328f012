"""US geography: states and the zip code dataset.

Zip codes come from the ``zipcodes`` package, which ships its dataset (about 42,000 zips with
state, time zone and coordinates) inside the wheel, so nothing is downloaded at run time.
"""

from __future__ import annotations

import functools
import math

import msgspec

STATES: dict[str, str] = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia",
    "FL": "Florida", "GA": "Georgia", "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois",
    "IN": "Indiana", "IA": "Iowa", "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana",
    "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts", "MI": "Michigan", "MN": "Minnesota",
    "MS": "Mississippi", "MO": "Missouri", "MT": "Montana", "NE": "Nebraska", "NV": "Nevada",
    "NH": "New Hampshire", "NJ": "New Jersey", "NM": "New Mexico", "NY": "New York",
    "NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma", "OR": "Oregon",
    "PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota",
    "TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VT": "Vermont", "VA": "Virginia",
    "WA": "Washington", "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
    "PR": "Puerto Rico", "VI": "U.S. Virgin Islands", "GU": "Guam", "AS": "American Samoa",
    "MP": "Northern Mariana Islands",
}  # fmt: skip
_STATE_BY_NAME = {name.casefold(): code for code, name in STATES.items()}
EARTH_RADIUS_MILES = 3958.8


class ZipInfo(msgspec.Struct, frozen=True):
    zip: str
    city: str
    state: str
    timezone: str
    lat: float
    lon: float


def state_code(value: str) -> str | None:
    """The 2-letter code for a state code or full name, or None."""
    text = value.strip()
    if len(text) == 2 and text.upper() in STATES:
        return text.upper()
    return _STATE_BY_NAME.get(" ".join(text.split()).casefold())


@functools.cache
def _zip_index() -> dict[str, ZipInfo]:
    import zipcodes  # loaded on first use: the dataset takes ~0.3 s to parse

    index: dict[str, ZipInfo] = {}
    for row in zipcodes.list_all():
        try:
            lat, lon = float(row["lat"]), float(row["long"])
        except (TypeError, ValueError):
            continue
        index[row["zip_code"]] = ZipInfo(
            zip=row["zip_code"],
            city=row["city"],
            state=row["state"],
            timezone=row.get("timezone") or "",
            lat=lat,
            lon=lon,
        )
    return index


def zip_info(zip5: str) -> ZipInfo | None:
    return _zip_index().get(zip5)


def distance_miles(a: ZipInfo, b: ZipInfo) -> float:
    """Great-circle distance (haversine)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a.lat, a.lon, b.lat, b.lon))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(
        (lon2 - lon1) / 2
    ) ** 2
    return 2 * EARTH_RADIUS_MILES * math.asin(math.sqrt(h))
