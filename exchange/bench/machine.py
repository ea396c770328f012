"""The machine a run measured: CPU, cores, memory, Python, PostgreSQL and Redis versions."""

from __future__ import annotations

import os
import platform

KIB_PER_GIB = 1024 * 1024


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram() -> str:
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / KIB_PER_GIB:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _postgres(dsn: str | None) -> str:
    if not dsn:
        return "not used"
    try:
        import psycopg

        with psycopg.connect(dsn, connect_timeout=5) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            return f"PostgreSQL {row[0]}" if row else "unknown"
    except Exception as exc:  # a report line, not a failure
        return f"unknown ({type(exc).__name__})"


def _redis(url: str | None) -> str:
    if not url:
        return "not used"
    try:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=5)
        return f"Redis {client.info('server')['redis_version']}"
    except Exception as exc:
        return f"unknown ({type(exc).__name__})"


def describe(postgres_dsn: str | None, redis_url: str | None) -> dict[str, str]:
    return {
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count() or "?"),
        "ram": _ram(),
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "postgresql": _postgres(postgres_dsn),
        "redis": _redis(redis_url),
        "load average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
