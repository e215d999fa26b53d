module coev/bench/http/go

go 1.19
