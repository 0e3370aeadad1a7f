"""Schedules: cron ticks that submit jobs, exactly once across a fleet."""
