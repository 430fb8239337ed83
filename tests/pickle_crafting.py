"""Hand-made pickle bytes for the unpickler tests: a call of any global, by each opcode that names one."""

from __future__ import annotations

import pickle


def call_pickle(module: str, name: str, args: tuple = ()) -> bytes:
    """A protocol-3 pickle of ``module.name(*args)`` written with a GLOBAL opcode."""
    body = pickle.dumps(args, protocol=3)[2:-1]  # drop PROTO header and STOP
    return b"\x80\x03c" + f"{module}\n{name}\n".encode() + body + b"R."


def stack_global_call(module: str, name: str) -> bytes:
    """A protocol-4 style ``module.name()`` written with STACK_GLOBAL."""

    def unicode(text: str) -> bytes:
        return b"\x8c" + bytes([len(text)]) + text.encode()

    return b"\x80\x04" + unicode(module) + unicode(name) + b"\x93)R."


def inst_call(module: str, name: str) -> bytes:
    """``module.name()`` written with the protocol-0 INST opcode after a protocol-2 header."""
    return b"\x80\x02(i" + f"{module}\n{name}\n".encode() + b"."
