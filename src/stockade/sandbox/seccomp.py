"""stockade's seccomp filter, built here as classic BPF (no library needed).

A deny-list on top of what namespaces and dropped capabilities already
stop: the calls it refuses are the ones an unprivileged job can still make
and that have a history of kernel escapes or break isolation:

- creating a user namespace (``clone``/``unshare`` with ``CLONE_NEWUSER``):
  inside one a job gets capabilities again, and with them could leave a
  chroot; ``clone3`` gets ``ENOSYS`` because its flags are out of a filter's
  reach (the C library then falls back to ``clone``);
- kernel keyrings (``keyctl``, ``add_key``, ``request_key``), ``bpf``,
  ``perf_event_open``, ``userfaultfd``, module and kexec loading;
- ``ioctl(TIOCSTI)`` and ``ioctl(TIOCLINUX)``: typing into a terminal.

Refused calls fail with ``EPERM``; system calls of another ABI (32-bit
i386 or x32 on x86-64) fail with ``ENOSYS`` so they cannot bypass the list.
:func:`program` gives the bytes bubblewrap takes on ``--seccomp FD``;
:func:`oci_rules` the same rules for an OCI ``config.json``.
"""

from __future__ import annotations

import errno
import platform
import struct
from typing import Any

__all__ = ["DENIED", "oci_rules", "program", "supported"]

CLONE_NEWUSER = 0x10000000
TIOCSTI = 0x5412
TIOCLINUX = 0x541C

#: Refused outright (names as in the kernel's syscall tables).
DENIED = (
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
)

_ARCHES: dict[str, tuple[int, str, dict[str, int]]] = {
    "x86_64": (
        0xC000003E,
        "SCMP_ARCH_X86_64",
        {
            "ioctl": 16, "clone": 56, "unshare": 272, "clone3": 435, "keyctl": 250,
            "add_key": 248, "request_key": 249, "bpf": 321, "perf_event_open": 298,
            "userfaultfd": 323, "kexec_load": 246, "kexec_file_load": 320,
            "init_module": 175, "finit_module": 313, "delete_module": 176,
        },
    ),
    "aarch64": (
        0xC00000B7,
        "SCMP_ARCH_AARCH64",
        {
            "ioctl": 29, "clone": 220, "unshare": 97, "clone3": 435, "keyctl": 219,
            "add_key": 217, "request_key": 218, "bpf": 280, "perf_event_open": 241,
            "userfaultfd": 282, "kexec_load": 104, "kexec_file_load": 294,
            "init_module": 105, "finit_module": 273, "delete_module": 106,
        },
    ),
}  # fmt: skip

# Classic BPF opcodes and seccomp return values.
_LD_ABS = 0x20
_JEQ = 0x15
_JGE = 0x35
_JSET = 0x45
_RET = 0x06
_ALLOW = 0x7FFF0000
_ERRNO = 0x00050000
_X32_BIT = 0x40000000
# Offsets in struct seccomp_data: nr, arch, ip, args[6] (low word first: little endian).
_NR, _ARCH, _ARG0, _ARG1 = 0, 4, 16, 24


def supported() -> bool:
    """Whether a filter can be built for this machine's architecture."""
    return platform.machine() in _ARCHES


def _assemble(code: list[tuple[int, str | None, str | None, int] | str]) -> bytes:
    """Turn instructions ``(op, jump-if-true, jump-if-false, k)`` and ``"label"``
    markers into ``struct sock_filter`` bytes, resolving labels to offsets."""
    labels: dict[str, int] = {}
    body: list[tuple[int, str | None, str | None, int]] = []
    for item in code:
        if isinstance(item, str):
            labels[item] = len(body)
        else:
            body.append(item)
    out = bytearray()
    for index, (op, jt, jf, k) in enumerate(body):
        t = labels[jt] - index - 1 if jt else 0
        f = labels[jf] - index - 1 if jf else 0
        assert 0 <= t < 256 and 0 <= f < 256, "seccomp program too long for a jump"
        out += struct.pack("=HBBI", op, t, f, k)
    return bytes(out)


def program() -> bytes:
    """The filter as BPF bytes for this architecture (see the module docstring)."""
    audit_arch, _, numbers = _ARCHES[platform.machine()]
    code: list[tuple[int, str | None, str | None, int] | str] = [
        (_LD_ABS, None, None, _ARCH),
        (_JEQ, "native", "enosys", audit_arch),
        "native",
        (_LD_ABS, None, None, _NR),
    ]
    if platform.machine() == "x86_64":
        code.append((_JGE, "enosys", None, _X32_BIT))
    code += [(_JEQ, "eperm", None, numbers[name]) for name in DENIED]
    code += [
        (_JEQ, "enosys", None, numbers["clone3"]),
        (_JEQ, "flags", None, numbers["clone"]),
        (_JEQ, "flags", None, numbers["unshare"]),
        (_JEQ, "ioctl", "allow", numbers["ioctl"]),
        "flags",
        (_LD_ABS, None, None, _ARG0),
        (_JSET, "eperm", "allow", CLONE_NEWUSER),
        "ioctl",
        (_LD_ABS, None, None, _ARG1),
        (_JEQ, "eperm", None, TIOCSTI),
        (_JEQ, "eperm", "allow", TIOCLINUX),
        "allow",
        (_RET, None, None, _ALLOW),
        "eperm",
        (_RET, None, None, _ERRNO | errno.EPERM),
        "enosys",
        (_RET, None, None, _ERRNO | errno.ENOSYS),
    ]
    return _assemble(code)


def oci_rules() -> dict[str, Any]:
    """The same rules as an OCI runtime-spec ``linux.seccomp`` object."""
    _, scmp_arch, _ = _ARCHES[platform.machine()]

    def arg(index: int, value: int, op: str) -> dict[str, Any]:
        rule: dict[str, Any] = {"index": index, "value": value, "op": op}
        if op == "SCMP_CMP_MASKED_EQ":
            rule["valueTwo"] = value
        return rule

    eperm = {"action": "SCMP_ACT_ERRNO", "errnoRet": errno.EPERM}
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": [scmp_arch],
        "syscalls": [
            {"names": list(DENIED), **eperm},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS},
            {
                "names": ["clone", "unshare"],
                **eperm,
                "args": [arg(0, CLONE_NEWUSER, "SCMP_CMP_MASKED_EQ")],
            },
            {"names": ["ioctl"], **eperm, "args": [arg(1, TIOCSTI, "SCMP_CMP_EQ")]},
            {"names": ["ioctl"], **eperm, "args": [arg(1, TIOCLINUX, "SCMP_CMP_EQ")]},
        ],
    }
