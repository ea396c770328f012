"""What the benchmark counts as an error."""

from exchange.bench.stats import LoadResult


def test_posts_that_succeeded_are_not_errors_and_failures_of_either_kind_are():
    load = LoadResult(statuses={"200": 90, "post:201": 40, "503": 3, "post:409": 2, "error:timeout": 1,
                                "post:error:ClientOSError": 1})  # fmt: skip
    assert load.errors == 3 + 2 + 1 + 1
