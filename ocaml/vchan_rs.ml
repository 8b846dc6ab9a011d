module Port = Port
module Error = Error
module Backend = Backend
module S = S
module Endpoint = Endpoint
