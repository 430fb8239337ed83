"""Wire format of the gRPC service: the generated modules (stylegan/v1/, from protos/ by
protos/generate.py; never edit them by hand) and `codec`, the hand-written conversions between
NumPy / our dataclasses and the messages, shared by the server and the client.

Importing this package imports grpc and protobuf, so `stylegan_sdk` imports it only when a `Client`
is used.
"""

from .stylegan.v1 import stylegan_pb2 as pb
from .stylegan.v1 import stylegan_pb2_grpc as pb_grpc

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["StyleGAN"].full_name  # "stylegan.v1.StyleGAN"

__all__ = ["SERVICE_NAME", "pb", "pb_grpc"]
