from shipyard.retry import Backoff


def test_backoff_grows_caps_and_resets():
    b = Backoff(base=1.0, cap=5.0, jitter=0.0)
    assert [b.failed() for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert b.succeeded() == 5
    assert b.failed() == 1.0


def test_jitter_stays_within_bounds():
    b = Backoff(base=2.0, cap=100.0, jitter=0.25)
    for n in range(1, 6):
        d = b.failed()
        full = 2.0 * 2 ** (n - 1)
        assert 0.75 * full <= d <= full
