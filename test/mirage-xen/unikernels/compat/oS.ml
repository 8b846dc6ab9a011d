module Xs = Xen_os.Xs

module Time = struct
  let sleep_ns = Mirage_sleep.ns
end
