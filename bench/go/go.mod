module coev/bench/go

go 1.19
