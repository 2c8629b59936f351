"""evalkit's vLLM backend (``backend=vllm``): offline batch generation with one vLLM engine.

Modules: ``backend`` (options, response cache, delivery), ``engine`` (the only vllm import:
chat template, prefix-sorted chunks), ``isolation`` (engines in spawned child processes,
data-parallel replicas), ``settings`` (picklable engine/decoding/prompt specs), ``diagnose``
(vLLM's failures as one-line errors naming the config key to change).
"""
