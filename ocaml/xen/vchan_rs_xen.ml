module Events = Events
module Memory = Memory
module Xs = Xs
module Config = Vchan_rs.Xenstore.Make (Xs)
include Vchan_rs.Endpoint.Make (Events) (Memory) (Config)
