"""The one partitioning of the project: a partition per course, added as courses appear."""

import dagster as dg

courses_partitions = dg.DynamicPartitionsDefinition(name="courses")
