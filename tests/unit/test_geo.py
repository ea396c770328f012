"""US geography: state codes, the zip dataset, great-circle distance."""

from __future__ import annotations

import math
import zlib

import pytest

from exchange import geo


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("TX", "TX"),
        ("tx", "TX"),
        (" tX ", "TX"),
        ("Texas", "TX"),
        ("TEXAS", "TX"),
        ("  new   york ", "NY"),
        ("North\tCarolina", "NC"),
        ("District of Columbia", "DC"),
        ("dc", "DC"),
        ("Puerto Rico", "PR"),
        ("u.s. virgin islands", "VI"),
        ("Guam", "GU"),
    ],
)
def test_state_code(raw, expected):
    assert geo.state_code(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", " ", "XX", "T", "TXX", "Tex", "New-York", "NewYork", "Washington DC"]
)
def test_state_code_unknown(raw):
    assert geo.state_code(raw) is None


def test_every_state_by_code_and_name():
    assert len(geo.STATES) == 56  # 50 states, DC and 5 territories
    for code, name in geo.STATES.items():
        assert len(code) == 2 and code.isupper()
        assert geo.state_code(code) == code
        assert geo.state_code(code.lower()) == code
        assert geo.state_code(name) == code
        assert geo.state_code(name.upper()) == code


def test_zip_info_exact_record():
    assert geo.zip_info("02134") == geo.ZipInfo(
        zip="02134",
        city="Allston",
        state="MA",
        timezone="America/New_York",
        lat=42.3535,
        lon=-71.1329,
    )


@pytest.mark.parametrize(
    "zip5, state, timezone",
    [
        ("10001", "NY", "America/New_York"),
        ("90210", "CA", "America/Los_Angeles"),
        ("00601", "PR", "America/Puerto_Rico"),
        ("96910", "GU", "Pacific/Guam"),
        ("20500", "DC", "America/New_York"),
    ],
)
def test_zip_info_known(zip5, state, timezone):
    info = geo.zip_info(zip5)
    assert info is not None
    assert (info.zip, info.state, info.timezone) == (zip5, state, timezone)
    assert -90 <= info.lat <= 90 and -180 <= info.lon <= 180


@pytest.mark.parametrize("raw", ["00000", "99999", "2134", "02134-1234", "", "021340"])
def test_zip_info_unknown(raw):
    assert geo.zip_info(raw) is None


def test_zip_dataset_is_large_and_keyed_by_five_digits():
    table = geo.zip_table()
    assert len(table) > 40_000
    zips = [info.zip for info in table]
    assert all(len(z) == 5 and z.isdigit() for z in zips)
    assert zips == sorted(set(zips))
    assert all(geo.zip_info(z).zip == z for z in zips[::97])


@pytest.mark.parametrize(
    "raw", ["1000１", "１0001", " 1001", "+1001", "1_001", "٠٠٦٠١", 10001, None]
)
def test_zip_info_odd_input(raw):
    assert geo.zip_info(raw) is None
    assert geo.zip_position(raw) is None


def test_zip_position_matches_zip_info():
    for zip5 in ("02134", "10001", "90210", "00601", "96910"):
        info = geo.zip_info(zip5)
        assert geo.zip_position(zip5) == (info.lat, info.lon)
    assert geo.zip_position("00000") is None
    a, b = geo.zip_info("10001"), geo.zip_info("90210")
    assert geo.distance_between((a.lat, a.lon), (b.lat, b.lon)) == geo.distance_miles(a, b)


def test_shipped_zip_file_matches_the_zipcodes_dataset():
    """exchange/geo_data/zips.bin is generated from ``zipcodes`` (``python -m exchange.geo
    --rebuild``): it must hold exactly what the dataset says, row for row."""
    rows = geo.dataset_rows()
    table = geo.zip_table()
    assert len(table) == len(rows)
    for info, row in zip(table, rows, strict=True):
        assert (info.zip, info.city, info.state, info.timezone, info.lat, info.lon) == row
    # and regenerating it changes nothing (compared uncompressed: zlib builds may differ)
    assert zlib.decompress(geo.ZIP_DATA.read_bytes()) == zlib.decompress(geo.build(rows))


def test_distance_same_point_is_zero():
    a = geo.zip_info("10001")
    assert geo.distance_miles(a, a) == 0.0


def test_distance_nyc_to_beverly_hills():
    a, b = geo.zip_info("10001"), geo.zip_info("90210")
    assert geo.distance_miles(a, b) == pytest.approx(2453.35, abs=0.01)
    assert geo.distance_miles(b, a) == pytest.approx(geo.distance_miles(a, b), rel=1e-12)


def point(lat: float, lon: float) -> geo.ZipInfo:
    return geo.ZipInfo(zip="00000", city="", state="", timezone="", lat=lat, lon=lon)


def test_distance_one_degree_along_equator():
    expected = 2 * math.pi * geo.EARTH_RADIUS_MILES / 360
    assert geo.distance_miles(point(0, 0), point(0, 1)) == pytest.approx(expected, rel=1e-9)
    assert expected == pytest.approx(69.09, abs=0.01)


def test_distance_antipodes_and_dateline():
    half = math.pi * geo.EARTH_RADIUS_MILES
    assert geo.distance_miles(point(0, 0), point(0, 180)) == pytest.approx(half, rel=1e-9)
    assert geo.distance_miles(point(90, 0), point(-90, 0)) == pytest.approx(half, rel=1e-9)
    # across the antimeridian: 179E to 179W is 2 degrees, not 358
    two = 2 * 2 * math.pi * geo.EARTH_RADIUS_MILES / 360
    assert geo.distance_miles(point(0, 179), point(0, -179)) == pytest.approx(two, rel=1e-9)
