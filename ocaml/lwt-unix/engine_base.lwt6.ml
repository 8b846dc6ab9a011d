type Lwt_engine.engine_id += Vchan_rs_epoll

class virtual t =
  object
    inherit Lwt_engine.abstract
    method id = Vchan_rs_epoll
  end
