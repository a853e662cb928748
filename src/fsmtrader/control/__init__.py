"""The control plane: what watches and steers a running bot from outside its trading loop
(API, push stream, dashboard, metrics, the CLI's status and control). It reads committed
records and the database, read-only, and steers only through the control desk."""
