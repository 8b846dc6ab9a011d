module Port = Port
module Domid = Domid
module Error = Error
module S = S
module Endpoint = Endpoint
module In_memory_events = In_memory_events
module In_memory = In_memory
module Xenstore = Xenstore
