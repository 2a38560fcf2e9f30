"""People at ingest: who speaks (voiceprints per speaker turn, clustered per video) and, later, who is seen."""
