"""The one Dagster Definitions: resources, jobs, schedules, sensors, automation, environment switching."""
import models  # noqa: F401  (sets OMP_WAIT_POLICY before the assets import torch)
