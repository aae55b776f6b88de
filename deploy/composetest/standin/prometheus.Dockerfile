# Stand-in for prom/prometheus:v3.5.0, made without a registry: Prometheus
# from Debian's prometheus package (bookworm: 2.42, not 3.5), with the C
# libraries it links, laid out as the official image is: /bin/prometheus as
# the entrypoint, user nobody, /prometheus (owned by nobody) as the data and
# working directory, the same default command.
FROM scratch
COPY rootfs/ /
COPY --chown=65534:65534 empty/ /prometheus/
USER 65534:65534
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
