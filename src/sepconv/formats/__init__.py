"""sepconv's own files: the checkpoint format (safetensors + a JSON sidecar) and the replay of a
separation plan recorded in it. Every reader treats the sidecar as untrusted input."""
