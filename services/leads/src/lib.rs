//! The leads service: intake, duplicates, interactions and scoring, the public pool, follow-up discipline, channel statistics.
