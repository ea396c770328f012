"""US geography: states and the zip code dataset.

The zip table (about 42,800 zips with city, state, time zone and coordinates) is a compact binary
file shipped in the package, ``exchange/geo_data/zips.bin``, derived from the ``zipcodes``
package's dataset. It is read on first use into a few flat arrays (about 2.5 MB in memory, ~20
milliseconds to load) instead of one dict per zip (~140 MB), and a zip is found by indexing an
array with its number, O(1). ``zipcodes`` is needed only to regenerate the file:
``python -m exchange.geo --rebuild`` (a unit test checks the file still matches the dataset).

File layout: zlib-compressed msgpack of a map ``{version, count, zips, lat, lon, state, timezone,
city, states, timezones, cities}``: ``zips`` (uint32), ``lat`` / ``lon`` (int32, degrees times
10,000: the dataset has 4 decimals), ``state`` / ``timezone`` (uint8) and ``city`` (uint32) are
little-endian arrays of ``count`` rows in zip order, the last three indexing the string lists
``states``, ``timezones`` and ``cities``.
"""

from __future__ import annotations

import functools
import math
import sys
from array import array
from collections.abc import Iterator
from pathlib import Path

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
ZIP_DATA = Path(__file__).with_name("geo_data") / "zips.bin"
FORMAT_VERSION = 1
_COORD_SCALE = 10_000  # coordinates are stored as integer 1/10,000ths of a degree
_ZIP_SPACE = 100_000  # every 5-digit number
_NONE = -1


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


class _ZipFile(msgspec.Struct, frozen=True):
    """The shipped file's contents (see the module docstring)."""

    version: int
    count: int
    zips: bytes
    lat: bytes
    lon: bytes
    state: bytes
    timezone: bytes
    city: bytes
    states: list[str]
    timezones: list[str]
    cities: list[str]


def _array(typecode: str, data: bytes) -> array:
    out = array(typecode)
    out.frombytes(data)
    if sys.byteorder != "little":
        out.byteswap()
    return out


class ZipTable:
    """Every zip in flat arrays; ``row[int(zip5)]`` is its row or -1."""

    def __init__(self, data: _ZipFile) -> None:
        if data.version != FORMAT_VERSION:
            raise ValueError(f"zip data format {data.version}, expected {FORMAT_VERSION}")
        self.zips = _array("I", data.zips)
        self.lat = _array("i", data.lat)
        self.lon = _array("i", data.lon)
        self.state = _array("B", data.state)
        self.timezone = _array("B", data.timezone)
        self.city = _array("I", data.city)
        if not all(
            len(a) == data.count
            for a in (self.zips, self.lat, self.lon, self.state, self.timezone, self.city)
        ):
            raise ValueError("zip data: arrays of different lengths")
        self.states = data.states
        self.timezones = data.timezones
        self.cities = data.cities
        self.row = array("i", [_NONE]) * _ZIP_SPACE
        for i, number in enumerate(self.zips):
            self.row[number] = i

    def __len__(self) -> int:
        return len(self.zips)

    def find(self, zip5: str) -> int:
        """The row of a 5-digit zip, or -1."""
        if type(zip5) is not str or len(zip5) != 5 or not (zip5.isascii() and zip5.isdigit()):
            return _NONE
        return self.row[int(zip5)]

    def info(self, i: int) -> ZipInfo:
        return ZipInfo(
            zip=f"{self.zips[i]:05d}",
            city=self.cities[self.city[i]],
            state=self.states[self.state[i]],
            timezone=self.timezones[self.timezone[i]],
            lat=self.lat[i] / _COORD_SCALE,
            lon=self.lon[i] / _COORD_SCALE,
        )

    def __iter__(self) -> Iterator[ZipInfo]:
        return (self.info(i) for i in range(len(self)))


@functools.cache
def zip_table() -> ZipTable:
    import zlib

    return ZipTable(msgspec.msgpack.decode(zlib.decompress(ZIP_DATA.read_bytes()), type=_ZipFile))


def zip_info(zip5: str) -> ZipInfo | None:
    table = zip_table()
    i = table.find(zip5)
    return None if i < 0 else table.info(i)


@functools.lru_cache(maxsize=8192)  # the matcher asks for the same centres and leads' zips
def zip_position(zip5: str) -> tuple[float, float] | None:
    """(lat, lon) of a zip, or None: ``zip_info`` without building the record."""
    table = zip_table()
    i = table.find(zip5)
    return None if i < 0 else (table.lat[i] / _COORD_SCALE, table.lon[i] / _COORD_SCALE)


def distance_miles(a: ZipInfo, b: ZipInfo) -> float:
    """Great-circle distance (haversine)."""
    return distance_between((a.lat, a.lon), (b.lat, b.lon))


def distance_between(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance (haversine) between two (lat, lon) in degrees."""
    radians = math.radians
    lat1, lon1, lat2, lon2 = radians(a[0]), radians(a[1]), radians(b[0]), radians(b[1])
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_MILES * math.asin(math.sqrt(h))


# --- regenerating the shipped file (needs the ``zipcodes`` package) -------------------------------


def dataset_rows() -> list[tuple[str, str, str, str, float, float]]:
    """(zip, city, state, timezone, lat, lon) of every zip in ``zipcodes`` with coordinates, in
    zip order: what the shipped file must hold."""
    import zipcodes

    rows = []
    for row in zipcodes.list_all():
        try:
            lat, lon = float(row["lat"]), float(row["long"])
        except (TypeError, ValueError):
            continue
        rows.append(
            (row["zip_code"], row["city"], row["state"], row.get("timezone") or "", lat, lon)
        )
    rows.sort()
    return rows


def _little(a: array) -> bytes:
    if sys.byteorder != "little":
        a = array(a.typecode, a)
        a.byteswap()
    return a.tobytes()


def build(rows: list[tuple[str, str, str, str, float, float]]) -> bytes:
    import zlib

    def interned(values: list[str]) -> tuple[list[str], dict[str, int]]:
        table = sorted(set(values))
        return table, {v: i for i, v in enumerate(table)}

    states, state_ix = interned([r[2] for r in rows])
    zones, zone_ix = interned([r[3] for r in rows])
    cities, city_ix = interned([r[1] for r in rows])
    if len(states) > 255 or len(zones) > 255:
        raise ValueError("more than 255 states or time zones: widen the arrays")
    for zip5, _, _, _, lat, lon in rows:
        if not (len(zip5) == 5 and zip5.isdigit()):
            raise ValueError(f"not a 5-digit zip: {zip5!r}")
        for value in (lat, lon):
            if round(value * _COORD_SCALE) / _COORD_SCALE != value:
                raise ValueError(f"zip {zip5}: {value} has more than 4 decimals")
    data = _ZipFile(
        version=FORMAT_VERSION,
        count=len(rows),
        zips=_little(array("I", [int(r[0]) for r in rows])),
        lat=_little(array("i", [round(r[4] * _COORD_SCALE) for r in rows])),
        lon=_little(array("i", [round(r[5] * _COORD_SCALE) for r in rows])),
        state=_little(array("B", [state_ix[r[2]] for r in rows])),
        timezone=_little(array("B", [zone_ix[r[3]] for r in rows])),
        city=_little(array("I", [city_ix[r[1]] for r in rows])),
        states=states,
        timezones=zones,
        cities=cities,
    )
    return zlib.compress(msgspec.msgpack.encode(data), 9)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m exchange.geo")
    parser.add_argument(
        "--rebuild", action="store_true", help=f"regenerate {ZIP_DATA} from the zipcodes package"
    )
    args = parser.parse_args(argv)
    if not args.rebuild:
        parser.print_help()
        return 2
    rows = dataset_rows()
    ZIP_DATA.parent.mkdir(exist_ok=True)
    ZIP_DATA.write_bytes(build(rows))
    print(f"{ZIP_DATA}: {len(rows):,} zips, {ZIP_DATA.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
