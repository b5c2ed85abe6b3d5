"""Running a benchmark's measurements in child processes, one per setting.

Each setting runs in its own process, so its peak RSS is its own and not the maximum over
everything run before it. The parent imports nothing heavy: on Linux a child started with
vfork/posix_spawn carries the parent's RSS high-water mark across `exec` into its `ru_maxrss`, so
a parent holding TensorFlow would inflate every child's figure. A child reports one JSON line
prefixed with `RESULT_PREFIX` (`emit`).
"""
import json
import os
import resource
import signal
import subprocess
import sys

RESULT_PREFIX = 'BENCH_RESULT '


def peak_rss_bytes():
    """This process's peak resident set size (Linux reports `ru_maxrss` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def emit(result):
    """Child side: reports a JSON-serializable dict to the parent."""
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def error_reason(error):
    """A one-line reason: the exception type and the first line of its message that is not
    TensorFlow's preamble ('Graph execution error:', 'Detected at node ...', traceback lines)."""
    lines = [l for l in str(error).splitlines() if l.strip() and not l.startswith((' ', '\t'))
             and not l.startswith(('Graph execution error', 'Detected at node'))]
    return f'{type(error).__name__}: {lines[0][:160] if lines else "no message"}'


def spawn(script, args, env=None, timeout=None):
    """Runs `python script *args` (killed after `timeout` seconds, if given); returns (result dict
    or None, failure reason or None)."""
    env = dict(os.environ, **(env or {}))
    env.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    try:
        proc = subprocess.run([sys.executable, str(script)] + list(args), capture_output=True,
                              text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f'timed out after {timeout:.0f} s'
    lines = [l for l in proc.stdout.splitlines() if l.startswith(RESULT_PREFIX)]
    result = json.loads(lines[-1][len(RESULT_PREFIX):]) if lines else None
    if result and 'error' in result:
        return None, f'{result["error"]} (peak RSS {gib(result["peak_rss"])})'
    if proc.returncode == 0 and result:
        return result, None
    if proc.returncode < 0:
        name = signal.Signals(-proc.returncode).name
        hint = ' (likely the out-of-memory killer)' if name == 'SIGKILL' else ''
        return None, f'killed by {name}{hint}'
    errors = [l.strip() for l in proc.stderr.splitlines() if l.strip()]
    return None, f'exit {proc.returncode}: {errors[-1] if errors else "no output"}'


def gib(n):
    return f'{n / 2 ** 30:.2f} GiB'


def accelerator_peak_bytes():
    """Child side: the peak memory this process took on its first accelerator (JAX's
    `peak_bytes_in_use`, PyTorch's `max_memory_allocated`), or None on a CPU."""
    import keras
    backend = keras.backend.backend()
    if backend == 'jax':
        import jax
        device = jax.local_devices()[0]
        return (device.memory_stats() or {}).get('peak_bytes_in_use') if device.platform == 'gpu' else None
    if backend == 'torch':
        import torch
        return torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None
    return None


def accelerator_name():
    """Child side: the first accelerator's name ('NVIDIA H200', ...), or 'cpu'."""
    import keras
    backend = keras.backend.backend()
    if backend == 'jax':
        import jax
        device = jax.local_devices()[0]
        return str(device.device_kind) if device.platform == 'gpu' else 'cpu'
    if backend == 'torch':
        import torch
        return torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu'
    return 'cpu'
