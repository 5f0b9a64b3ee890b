#!/usr/bin/env python3
"""Monthly AWS cost of bamboohr-sync per directory size and number of directories,
from per-operation counts (BENCHMARKS.md, "Cost model", says which counts are measured
and which are modeled) and us-east-1 list prices. Standard library only.

Usage: scripts/cost-model.py   (prints the tables BENCHMARKS.md quotes)
"""

from math import ceil

DAYS = 30

# --- us-east-1 list prices (USD), as published by AWS; see BENCHMARKS.md for the date.
LAMBDA_GB_S_ARM = 0.0000133334      # per GB-second, arm64
LAMBDA_REQ = 0.20 / 1e6             # per invocation
DDB_WRU = 0.625 / 1e6               # on-demand write request unit
DDB_RRU = 0.125 / 1e6               # on-demand read request unit
DDB_GB_MONTH = 0.25                 # storage
EB_EVENT = 1.00 / 1e6               # custom event published (64 KB chunks)
SCHED_INVOKE = 1.00 / 1e6           # after 14 M free invocations a month
SCHED_FREE = 14e6
SQS_FIFO_REQ = 0.50 / 1e6
SQS_STD_REQ = 0.40 / 1e6
SM_SECRET_MONTH = 0.40
SM_CALLS = 0.05 / 10_000

MEMORY_GB = 0.25                    # MemorySize 256 (infra/template.yaml)

# --- schedules (defaults)
INCREMENTAL_PER_DAY = 48            # every 30 minutes
FULL_PER_DAY = 1                    # daily full reconciliation
SWEEPS_PER_DAY = 96                 # stack-level stale sweep, every 15 minutes

# --- modeled workload
CHANGE_RATE_PER_DAY = 0.01          # share of employees changed per day (HR edits)
TARGETS = 2                         # e.g. one app webhook and one SCIM target
USER_ITEM_KB = 2                    # DirectoryUser JSON + attributes (measured ~1.5 KB)

# Per run, measured by the poller bench at 1,000 employees (BENCHMARKS.md, "Poller"):
# a full sync with nothing changed costs 32 read and 10 write units, of which about 16
# read units are the fingerprint projection (linear in employees); the rest (lease,
# run record, directory, cursor, the sync_completed outbox entry) is per run.
RUN_RRU = 16
RUN_WRU = 10
PROJECTION_RRU_PER_EMPLOYEE = 16 / 1000
# Per changed employee, measured by the same bench (incremental run, 10 of 1,000
# changed: 33.5 read and 98 write units): (98 - 10) / 10 write units and
# (33.5 - 16) / 10 read units per change (user + outbox transaction, outbox delete).
CHANGE_WRU = 8.8
CHANGE_RRU = 1.75
# Per event and target (measured shape, dispatcher bench): directory, user, ledger
# and breaker reads; ledger advance and delivery-log write.
DELIVERY_RRU = 4
DELIVERY_WRU = 1 + 2
# Lambda time (modeled: BambooHR latency dominates the poller; figures in
# BENCHMARKS.md are CPU only).
POLLER_INCREMENTAL_S = 1.0          # changed-ids request + fetches + DynamoDB calls
POLLER_FULL_S_PER_1000 = 4.0        # one 1000-row datasets page and its diff
DISPATCH_S_PER_EVENT_TARGET = 0.03  # DynamoDB round trips + the target's answer
# SQS event source polling while idle: 5 pollers long-polling 20 s, per queue.
SQS_IDLE_REQ_MONTH = 5 * 3 * 60 * 24 * DAYS
QUEUES = 2                          # FIFO change queue, standard retry queue


def per_directory(n: int) -> dict[str, float]:
    """Monthly cost of one directory of n employees, by service."""
    runs = (INCREMENTAL_PER_DAY + FULL_PER_DAY) * DAYS
    changes = n * CHANGE_RATE_PER_DAY * DAYS
    # Incremental runs: 1 changed-ids request + ceil(changed/100) fetches (BambooHR,
    # free); a full run reads the fingerprint projection (eventually consistent, 0.5
    # RRU per 4 KB) and writes a checkpoint per 1000-row page.
    pages = max(1, ceil(n / 1000))
    full_rru = n * PROJECTION_RRU_PER_EMPLOYEE
    full_wru = pages * 2                         # a checkpoint per page (modeled)
    events = changes + runs                      # user events + one sync_completed per run
    deliveries = events * TARGETS
    rru = (runs * RUN_RRU + FULL_PER_DAY * DAYS * full_rru + changes * CHANGE_RRU
           + deliveries * DELIVERY_RRU)
    wru = runs * RUN_WRU + FULL_PER_DAY * DAYS * full_wru + changes * CHANGE_WRU + deliveries * DELIVERY_WRU
    storage_gb = n * USER_ITEM_KB / 1024 / 1024 * 1.2   # + ledger, logs, index
    lambda_s = (INCREMENTAL_PER_DAY * DAYS * POLLER_INCREMENTAL_S
                + FULL_PER_DAY * DAYS * max(1.0, POLLER_FULL_S_PER_1000 * n / 1000)
                + deliveries * DISPATCH_S_PER_EVENT_TARGET)
    invocations = runs + ceil(events / 10)       # poller runs + dispatcher batches of 10
    return {
        "Lambda": lambda_s * MEMORY_GB * LAMBDA_GB_S_ARM + invocations * LAMBDA_REQ,
        "DynamoDB": rru * DDB_RRU + wru * DDB_WRU + storage_gb * DDB_GB_MONTH,
        "EventBridge": events * EB_EVENT,
        "Scheduler": runs * SCHED_INVOKE,        # before the free tier (applied per stack)
        "SQS": events * 3 * SQS_FIFO_REQ,        # send, receive, delete (upper bound)
        "Secrets Manager": SM_SECRET_MONTH + runs * SM_CALLS,
    }


def stack(directories: int, n: int) -> dict[str, float]:
    one = per_directory(n)
    total = {k: v * directories for k, v in one.items()}
    runs = (INCREMENTAL_PER_DAY + FULL_PER_DAY) * DAYS * directories + SWEEPS_PER_DAY * DAYS
    total["Scheduler"] = max(0.0, runs - SCHED_FREE) * SCHED_INVOKE
    # The sweep lists every directory (2 KB items) through the index.
    total["DynamoDB"] += SWEEPS_PER_DAY * DAYS * ceil(directories * 2 / 4) * 0.5 * DDB_RRU
    total["SQS"] += QUEUES * SQS_IDLE_REQ_MONTH * SQS_STD_REQ
    return total


# A first sync pushed through the change queue (issue 19): each lane (message group)
# of a directory delivers one change at a time, so a directory's rate is
# lanes / (target latency + our own time per delivery). Lambda bills each message's
# wall time within its batch (the worst case: a batch's messages in one lane, one after
# another; lanes of one batch running concurrently only lower it).
FIRST_SYNC_OVERHEAD_S = DISPATCH_S_PER_EVENT_TARGET   # DynamoDB round trips per delivery
FIRST_SYNC_SQS_REQ_PER_EVENT = 0.1 + 0.1 + 0.1        # batched send, receive, delete (10 each)
FIRST_SYNC_POLLER_WRU_PER_EMPLOYEE = CHANGE_WRU        # user + outbox event + release


def first_sync(employees: int, target_s: float, lanes: int, targets: int = 1) -> dict[str, float]:
    per_delivery = target_s + FIRST_SYNC_OVERHEAD_S
    rate = lanes / per_delivery
    deliveries = employees * targets
    cost = {
        "Lambda": deliveries * per_delivery * MEMORY_GB * LAMBDA_GB_S_ARM
        + deliveries / 10 * LAMBDA_REQ,
        "DynamoDB": deliveries * (DELIVERY_RRU * DDB_RRU + DELIVERY_WRU * DDB_WRU)
        + employees * FIRST_SYNC_POLLER_WRU_PER_EMPLOYEE * DDB_WRU,
        "EventBridge": employees * EB_EVENT,
        "SQS": employees * FIRST_SYNC_SQS_REQ_PER_EVENT * SQS_FIFO_REQ,
    }
    return {"rate": rate, "minutes": employees / rate / 60, **cost}


def fmt(v: float) -> str:
    return f"{v:,.2f}" if v >= 0.01 else f"{v:.4f}"


def main() -> None:
    services = list(per_directory(1).keys())
    print("Per directory, per month (USD):")
    print("| employees | " + " | ".join(services) + " | total |")
    print("|---:|" + "---:|" * (len(services) + 1))
    for n in (100, 1_000, 10_000):
        c = per_directory(n)
        print(f"| {n:,} | " + " | ".join(fmt(c[s]) for s in services) + f" | {fmt(sum(c.values()))} |")
    print()
    print("Whole stack, 1,000-employee directories, per month (USD):")
    print("| directories | " + " | ".join(services) + " | total | per directory |")
    print("|---:|" + "---:|" * (len(services) + 2))
    for d in (1, 10, 100, 1_000, 10_000):
        c = stack(d, 1_000)
        t = sum(c.values())
        print(f"| {d:,} | " + " | ".join(fmt(c[s]) for s in services) + f" | {fmt(t)} | {fmt(t / d)} |")


def main_first_sync() -> None:
    print()
    print("A 100,000-employee first sync, one target (USD for the whole sync):")
    print("| target latency | lanes | rate (changes/s) | drained in | Lambda | DynamoDB | EventBridge | SQS | total |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for target_s in (0.2, 1.0):
        for lanes in (10, 64):
            f = first_sync(100_000, target_s, lanes)
            total = f["Lambda"] + f["DynamoDB"] + f["EventBridge"] + f["SQS"]
            print(
                f"| {target_s * 1000:.0f} ms | {lanes} | {f['rate']:.0f} | {f['minutes']:.0f} min | "
                f"{fmt(f['Lambda'])} | {fmt(f['DynamoDB'])} | {fmt(f['EventBridge'])} | {fmt(f['SQS'])} | {fmt(total)} |"
            )


if __name__ == "__main__":
    main()
    main_first_sync()
