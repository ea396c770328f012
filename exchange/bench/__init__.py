"""``exchange bench``: measure the exchange on this machine, check it stayed correct, report.

Light on purpose: the CLI reads these names to build its parser, so importing the package must
not import the benchmark itself (``runner`` does that, only when ``exchange bench`` runs).

runner     the order of the run, the profiles (full, ``--quick``), the options
scenarios  the HTTP scenarios (post, ping, deadline, baselines), driven by ``loadgen``
loadgen    the load generator, a separate process (aiohttp; open or closed loop)
buyers     the buyer servers, a separate process (latency, timeouts, errors, rejections)
baselines  the bare Litestar endpoints this machine's limits are measured with
seed       the database and the market: verticals, buyers, campaigns, keys
matching   the in-process eligibility micro-benchmark
teams      round-robin assignment and simultaneous parallel claims
memory     an API process's RSS with many campaigns cached
checks     correctness after the run
report     targets, the console tables, docs/performance.md
profiling  ``--profile``: where one lead's time goes, in-process (CPU, SQL statements, functions)
"""

SCENARIOS = ("post", "ping", "deadline", "matching", "teams", "memory", "scale", "embedded")
DEFAULT_POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/7"
PROFILES = ("post", "ping", "route")
PROFILE_LEADS = 300
