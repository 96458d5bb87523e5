"""Writing one mint's credits, with its verifiable-ledger entry hashed meanwhile.

The log's register and credits trees (a SHA-256 per backer and per node: about a second
for a million backers) depend only on the weights in force and the credits, not on what
the database writes; so they are hashed in another thread while the database writes the
credit rows and adds them to the balances, statements during which the driver lets other
threads run. The entry is the same as hashed before the writes; on a machine with a
second core the mint waits for the longer of the two instead of both. A mint of fewer
than `HASH_ASIDE_FROM` backers (credited or in force) is hashed in line: a thread would
cost more than it saves.

Only statements that take a whole slice of rows run beside the hashing: while a thread
holds Python's interpreter lock, a write made row by row would wait for its turn at every
row (`credits_repo.credits_in_one_pass` says which way the store writes).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

from heliod.adapters.heap import release_free_memory
from heliod.adapters.store import Connection, credits_repo
from heliod.daemon.jobs.ledger_log import LogEntry, MintLog
from heliod.rewards.allocation import Credits
from heliod.rewards.register import InForce
from heliod.rewards.verify import MintRecord


def write_credits(
    conn: Connection,
    log: MintLog | None,
    record: MintRecord,
    in_force: InForce,
    credits: Credits,
    *,
    minted: int,
) -> tuple[LogEntry | None, bool]:
    """The mint's credit rows and their sum into the balances (`minted`: the plant's units
    minted with this mint), in the caller's transaction; returns the mint's log entry
    (None without a log) and whether the balances were summed (False: the caller writes
    the exact totals, `credits_repo.add_credits_to_balances` says when)."""
    plant, k = record.plant, record.mwh_index
    if log is None or max(len(credits), len(in_force)) < HASH_ASIDE_FROM:
        before = credits_repo.insert_credits(conn, plant, k, credits)
        summed = credits_repo.add_credits_to_balances(conn, plant, k, minted, before)
        entry = None if log is None else log.entry(record, in_force.key, in_force, credits)
        return entry, summed
    hashing: Future[LogEntry] | None = None
    with ThreadPoolExecutor(1, thread_name_prefix="heliod-log") as aside:  # waits on exit
        if credits_repo.credits_in_one_pass(conn):
            hashing = aside.submit(log.entry, record, in_force.key, in_force, credits)
        before = credits_repo.insert_credits(conn, plant, k, credits)
        if hashing is None:
            hashing = aside.submit(log.entry, record, in_force.key, in_force, credits)
        summed = credits_repo.add_credits_to_balances(conn, plant, k, minted, before)
    entry = hashing.result()
    release_free_memory()  # what the thread freed, before the push body is built
    return entry, summed


HASH_ASIDE_FROM = 1 << 12  # backers; below, a thread would cost more than it saves
