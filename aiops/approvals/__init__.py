"""Approvals: the gate every cluster change passes, and its audit trail (PHRs)."""

from aiops.approvals.phr import Actor, ObjectRef, PhrMeta, PhrStore, Record, records_frame
from aiops.approvals.phr_verify import Problem, VerifyResult

__all__ = ["Actor", "ObjectRef", "PhrMeta", "PhrStore", "Problem", "Record", "VerifyResult",
           "records_frame"]
