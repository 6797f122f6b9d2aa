"""sepconv's own files: the checkpoint format (safetensors + a JSON sidecar, :mod:`.checkpoint`),
the sidecar's declared schema (:mod:`.sidecar`) and the replay of a separation plan recorded in it
(:mod:`.plan`). Every reader treats the sidecar as untrusted input and validates it first."""
