"""Running a test module's cases in parallel (test_deposit, test_retrieve,
test_retrieve_more): each case is a function of a fresh context (its own
state directory, daemons and peers); the module fixture starts every
selected case in the background, longest first and spread out in time, and
each pytest test waits for its own case and reports it.

    CASES = {}
    case = campaign.case_decorator(CASES)

    @pytest.fixture(scope="module")
    def campaign(request):
        yield from campaign.run(request, campaign.Campaign(
            CASES, Ctx, workers=8, case_timeout=240), LONGEST_FIRST)

A context needs: .note(text), .notes, .error, .problems, .env, .base,
.peer_report() and .close(ok).
"""

import concurrent.futures
import sys
import threading
import time
import traceback

import pytest


def case_decorator(cases):
    def case(name):
        def deco(fn):
            cases[name] = fn
            return fn
        return deco
    return case


class Campaign:
    def __init__(self, cases, make_ctx, workers, case_timeout, start_gap=0.0,
                 report=None):
        """workers None: one per selected case. report(ctx): more text to
        print when a case fails (e.g. what a SIPp peer logged)."""
        self.cases = cases
        self.make_ctx = make_ctx
        self.workers = workers
        self.case_timeout = case_timeout
        self.start_gap = start_gap
        self.report = report
        self.pool = None
        self.futures = {}
        self.lock = threading.Lock()

    def _run(self, name, delay):
        # The starts are spread: a dozen umservices synthesising their
        # prompts at once on 2 vCPUs delay everything else by seconds.
        time.sleep(delay)
        ctx = self.make_ctx(name)
        ok = False
        t0 = time.monotonic()
        try:
            self.cases[name](ctx)
            ok = True
        except BaseException as e:          # reported by the test
            ctx.error = e
            ctx.note(traceback.format_exc(limit=3).splitlines()[-1])
        finally:
            ctx.note(f"took {time.monotonic() - t0:.0f} s")
            try:
                ctx.close(ok)
            except BaseException as e:
                ctx.problems.append(f"cleanup failed: {e!r}\n{traceback.format_exc()}")
        return ctx

    def submit(self, name):
        with self.lock:
            if self.pool is None:
                self.pool = concurrent.futures.ThreadPoolExecutor(
                    max_workers=self.workers or 4)
            if name not in self.futures:
                self.futures[name] = self.pool.submit(
                    self._run, name, self.start_gap * len(self.futures))
            return self.futures[name]

    def check(self, request, name):
        fut = self.submit(name)
        try:
            ctx = fut.result(timeout=self.case_timeout)
        except concurrent.futures.TimeoutError:
            pytest.fail(f"case {name} did not finish within {self.case_timeout} s")
        request.node._openum_env = ctx.env
        for n in ctx.notes:
            print(n)
        if ctx.error is not None:
            rep = ctx.peer_report()
            if rep:
                print(rep)
            if self.report:
                print(self.report(ctx))
            if ctx.problems:
                print("also:", "\n".join(ctx.problems))
            print(f"[kept {ctx.base} for inspection]")
            raise ctx.error
        if ctx.problems:
            print(f"[kept {ctx.base} for inspection]")
            pytest.fail("processes did not stop cleanly:\n" + "\n".join(ctx.problems),
                        pytrace=False)
        return ctx


def run(request, c, longest_first):
    """The body of a module fixture: starts every case this session selected
    from request's module (longest first), yields the campaign, then waits
    for the pool."""
    # The scripted UA's RTP sender is a Python thread: hand the GIL around
    # often so that it stays on its 20 ms schedule while other cases analyse.
    old_switch = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    names = []
    for item in request.session.items:
        cs = getattr(item, "callspec", None)
        if item.module is request.module and cs is not None and "case" in cs.params:
            names.append(cs.params["case"])
    if c.workers is None:
        c.workers = max(1, len(set(names)))
    order = {n: i for i, n in enumerate(longest_first)}
    for n in sorted(set(names), key=lambda n: order.get(n, len(order))):
        c.submit(n)
    yield c
    if c.pool is not None:
        c.pool.shutdown(wait=True, cancel_futures=True)
    sys.setswitchinterval(old_switch)
