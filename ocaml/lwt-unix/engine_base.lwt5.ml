class virtual t =
  object
    inherit Lwt_engine.abstract
  end
