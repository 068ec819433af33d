"""SMPP 3.4 ESME: PDUs on smpplib's codec, a pure bind session, and the asyncio client around them."""
from gateway.smpp.client import Incoming, SmppClient, SmppError, SmppSettings, SubmitPart
from gateway.smpp.pdu import TEMPORARY_STATUSES, BadPdu, Framer, Pdu, PduError, status_name
from gateway.smpp.session import ProtocolError, Session

__all__ = [
    "TEMPORARY_STATUSES", "BadPdu", "Framer", "Incoming", "Pdu", "PduError", "ProtocolError", "Session",
    "SmppClient", "SmppError", "SmppSettings", "SubmitPart", "status_name",
]
