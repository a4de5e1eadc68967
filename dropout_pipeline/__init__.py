"""dropout_pipeline: week-by-week early warning of fail and dropout risk for MOOC learners."""
