"""Speech: audio decoded from the video, recognised with faster-whisper, on the video's clock."""
