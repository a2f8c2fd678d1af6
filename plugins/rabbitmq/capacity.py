"""RabbitMQ series that fill up towards a limit: memory towards the high watermark (the memory alarm blocks every
publisher there), file descriptors, sockets and Erlang processes towards the node's limits."""

from kubestack.plugins.base import Capacity

CAPACITIES = (
    Capacity(used="rabbitmq_mem_used_bytes", limit="rabbitmq_mem_limit_bytes",
             title="RabbitMQ memory (to the high watermark)"),
    Capacity(used="rabbitmq_fd_used", limit="rabbitmq_fd_total", title="RabbitMQ file descriptors"),
    Capacity(used="rabbitmq_sockets_used", limit="rabbitmq_sockets_total", title="RabbitMQ sockets"),
    Capacity(used="rabbitmq_processes_used", limit="rabbitmq_processes_total", title="RabbitMQ Erlang processes"),
)
