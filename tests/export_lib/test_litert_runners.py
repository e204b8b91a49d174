"""litert_runners: the buffer-overlap check that decides whether states may be copied in place."""
from movinet_tf.export_lib.litert_runners import buffers_overlap


def test_overlap_of_buffer_ranges():
    assert not buffers_overlap([(0, 10), (10, 20), (30, 40)])   # touching is not sharing
    assert buffers_overlap([(30, 40), (0, 10), (9, 20)])
    assert buffers_overlap([(0, 100), (20, 30)])   # one buffer inside another
    assert not buffers_overlap([])
