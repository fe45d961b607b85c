from hypothesis import given
from hypothesis import strategies as st

from shared.geo import bounding_box, distance_m


def test_known_distances():
    assert distance_m(31.3, 120.6, 31.3, 120.6) == 0
    # one thousandth of a degree of latitude is about 111 m anywhere
    assert 110.5 < distance_m(31.300, 120.6, 31.301, 120.6) < 111.6
    # a thousandth of a degree of longitude at 31.3° N is about 95 m
    assert 94.0 < distance_m(31.3, 120.600, 31.3, 120.601) < 96.0


@given(
    st.floats(30, 32),
    st.floats(120, 121),
    st.floats(0, 360),
    st.floats(1, 500),
)
def test_points_within_radius_lie_inside_the_box(lat, lon, bearing, radius):
    import math

    # a point at (almost) the radius in any direction stays inside the bounding box
    dlat = radius * 0.999 * math.cos(math.radians(bearing)) / 111_195
    dlon = (
        radius * 0.999 * math.sin(math.radians(bearing)) / (111_195 * math.cos(math.radians(lat)))
    )
    min_lat, min_lon, max_lat, max_lon = bounding_box(lat, lon, radius)
    assert min_lat <= lat + dlat <= max_lat
    assert min_lon <= lon + dlon <= max_lon
    assert distance_m(lat, lon, lat + dlat, lon + dlon) <= radius * 1.001
