from __future__ import annotations

import errno
import pickle

from runtime.sys import SyscallError
from runtime.sys.errors import named


def test_syscall_error_is_an_oserror_that_names_the_call():
    e = SyscallError(errno.EBUSY, "umount2", ("/x", named("MNT_DETACH")))
    assert isinstance(e, OSError)
    assert e.errno == errno.EBUSY
    assert str(e) == "umount2('/x', MNT_DETACH): [Errno 16] Device or resource busy"


def test_syscall_error_survives_pickling_with_its_context():
    e = pickle.loads(pickle.dumps(SyscallError(errno.EPERM, "setns", (3, 0))))
    assert (e.errno, e.call, e.call_args) == (errno.EPERM, "setns", (3, 0))
