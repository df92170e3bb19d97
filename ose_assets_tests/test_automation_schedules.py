"""Schedules: cron, Paris timezone, default status and the as-of date tag of each tick."""

import datetime as dt

import dagster as dg
import pytest

from ose_assets.automation.schedules import SCHEDULES, ose_nightly_rescoring, ose_weekly_retraining
from ose_assets.settings import PARIS
from ose_assets.warehouse import AS_OF_TAG


@pytest.fixture(scope="module")
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def test_schedule_definitions():
    assert {s.name: (s.job_name, s.cron_schedule, s.execution_timezone) for s in SCHEDULES} == {
        "ose_nightly_rescoring": ("ose_rescoring", "0 2 * * *", "Europe/Paris"),
        "ose_weekly_retraining": ("ose_full_refresh", "0 3 * * 0", "Europe/Paris"),
    }
    assert all(s.default_status == dg.DefaultScheduleStatus.RUNNING for s in SCHEDULES)


def test_automation_is_registered_and_running_by_default():
    from ose_assets.definitions import defs  # the whole code location: every stage must import

    repository = defs.get_repository_def()
    assert {s.name for s in repository.schedule_defs} == {"ose_nightly_rescoring", "ose_weekly_retraining"}
    (sensor,) = repository.sensor_defs
    assert (sensor.name, sensor.job_name) == ("ose_inbox_sensor", "ose_rescoring")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def ticks(schedule: dg.ScheduleDefinition, start: dt.datetime, count: int) -> list[dt.datetime]:
    """The next `count` ticks after `start`, as the daemon computes them."""
    from dagster._utils.schedules import cron_string_iterator

    iterator = cron_string_iterator(start.timestamp(), schedule.cron_schedule, schedule.execution_timezone)
    return [next(iterator) for _ in range(count)]


def test_nightly_ticks_at_two_in_paris_in_winter_and_summer():
    winter = ticks(ose_nightly_rescoring, dt.datetime(2025, 1, 14, 12, tzinfo=PARIS), 2)
    summer = ticks(ose_nightly_rescoring, dt.datetime(2025, 7, 14, 12, tzinfo=PARIS), 1)
    assert [t.astimezone(PARIS).isoformat() for t in winter + summer] == [
        "2025-01-15T02:00:00+01:00",
        "2025-01-16T02:00:00+01:00",
        "2025-07-15T02:00:00+02:00",
    ]


def test_nightly_tick_when_clocks_go_forward_runs_once_at_three():
    spring = ticks(ose_nightly_rescoring, dt.datetime(2025, 3, 29, 12, tzinfo=PARIS), 2)
    # 02:00 does not exist on 30 March 2025 in Paris: the tick fires at 03:00, the same day.
    assert [t.astimezone(PARIS).isoformat() for t in spring] == [
        "2025-03-30T03:00:00+02:00",
        "2025-03-31T02:00:00+02:00",
    ]


def test_weekly_retraining_ticks_on_sunday_at_three_in_paris():
    weekly = ticks(ose_weekly_retraining, dt.datetime(2025, 3, 20, tzinfo=PARIS), 3)
    assert [t.astimezone(PARIS).isoformat() for t in weekly] == [
        "2025-03-23T03:00:00+01:00",
        "2025-03-30T03:00:00+02:00",  # the night clocks go forward
        "2025-04-06T03:00:00+02:00",
    ]
    assert {t.astimezone(PARIS).weekday() for t in weekly} == {6}


@pytest.mark.parametrize(
    ("schedule", "job_name"),
    [(ose_nightly_rescoring, "ose_rescoring"), (ose_weekly_retraining, "ose_full_refresh")],
)
@pytest.mark.parametrize(
    ("scheduled_execution_time", "as_of"),
    [
        (dt.datetime(2025, 3, 10, 2, tzinfo=PARIS), "2025-03-10"),
        # The daemon may hand the time in UTC: 01:00 UTC on 10 March is 02:00 in Paris.
        (dt.datetime(2025, 3, 10, 1, tzinfo=dt.UTC), "2025-03-10"),
        # 23:30 UTC in summer is already the next day in Paris.
        (dt.datetime(2024, 6, 30, 23, 30, tzinfo=dt.UTC), "2024-07-01"),
    ],
)
def test_run_request_carries_the_scheduled_date_as_of(
    instance, schedule, job_name, scheduled_execution_time, as_of
):
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=scheduled_execution_time)
    request = schedule(context)
    assert isinstance(request, dg.RunRequest)
    assert request.tags[AS_OF_TAG] == as_of
    assert schedule.job_name == job_name
