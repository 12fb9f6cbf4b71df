
use builtin;
use str;

set edit:completion:arg-completer[scancer] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'scancer'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'scancer'= {
            cand --color 'When to colour the output: auto colours terminals unless NO_COLOR is set'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand predict 'Run a model on image files, directories of images, or standard input: locally, on whole slides (--tile), or with a remote inference API (--remote)'
            cand archive 'Package a model and its handler configuration as a TorchServe .mar archive, or inspect one'
            cand store 'Manage models on a TorchServe management API (Scancer''s model store)'
            cand serve 'Serve models: TorchServe''s inference and management APIs, KServe V1 and V2, Prometheus metrics'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'scancer;predict'= {
            cand -m 'Model file: AOTInductor package (.pt2), ONNX (.onnx) or TorchScript (.pt); or a TorchServe archive of one (.mar, .tar.gz, or an unpacked folder); or a WSInfer model folder (config.json and torchscript_model.pt); with --remote, the model''s name on the server'
            cand --model 'Model file: AOTInductor package (.pt2), ONNX (.onnx) or TorchScript (.pt); or a TorchServe archive of one (.mar, .tar.gz, or an unpacked folder); or a WSInfer model folder (config.json and torchscript_model.pt); with --remote, the model''s name on the server'
            cand -c 'Handler configuration (TOML) [default: the model''s path with the extension .toml; for an archive, the configuration it carries or the one of its built-in image_classifier handler]'
            cand --config 'Handler configuration (TOML) [default: the model''s path with the extension .toml; for an archive, the configuration it carries or the one of its built-in image_classifier handler]'
            cand -f 'Output format'
            cand --format 'Output format'
            cand -o 'Write the results to FILE instead of standard output: through FILE.partial, record by record, renamed to FILE when complete (devices and FIFOs are written in place)'
            cand --output 'Write the results to FILE instead of standard output: through FILE.partial, record by record, renamed to FILE when complete (devices and FIFOs are written in place)'
            cand -b 'Images per forward pass (serve: the most requests batched together). Every answer is the one this batch shape gives: a partial batch is padded, or runs at a smaller shape checked at load to answer bit for bit the same, so on one machine a result is identical whatever the image''s neighbours, the load and the threads; another CPU''s instruction set (AVX-512, AVX2, AVX) agrees within 1e-5, and so does another batch size'
            cand --batch-size 'Images per forward pass (serve: the most requests batched together). Every answer is the one this batch shape gives: a partial batch is padded, or runs at a smaller shape checked at load to answer bit for bit the same, so on one machine a result is identical whatever the image''s neighbours, the load and the threads; another CPU''s instruction set (AVX-512, AVX2, AVX) agrees within 1e-5, and so does another batch size'
            cand --threads 'Model instances running side by side, each running whole forward passes on one thread (serve: workers per model) [default: one per physical core; one on CUDA]'
            cand --device 'Where the model runs'
            cand --max-image-pixels 'Refuse images with more pixels than this (decompression-bomb guard)'
            cand --decode-threads 'Threads that decode and preprocess images [default: half the cores, at least 1]'
            cand --shard 'Predict only the K-th of N equal contiguous slices of the inputs (K from 0), for job arrays; the outputs of shards 0 to N-1 concatenated equal one unsharded run in every format (only shard 0 writes the CSV or table header; JSON''s brackets come from the first and last)'
            cand --mask-dir 'Where segmentation masks are written [default: <output stem>-masks next to --output, else ./scancer-masks]'
            cand --explain 'Write an Integrated Gradients attribution of each image as a PNG (the input, and the attribution over it): DIR/<the input''s path>.explain.png; on slides, of the hotspot window. About 50 ms a 96x96 patch on 2 cores (the model''s gradients, 15 steps)'
            cand --stride 'Pixels between windows of a slide [default: the window size]'
            cand --tissue-threshold 'Mean saturation (HSV, of a 1/16 downsample) above which a window is tissue and runs'
            cand --level 'Pyramid level of slides in pyramidal formats, read as it is (0: full resolution; 2: 4x smaller, e.g. 10x of a 40x scan); level 1 and up need the `openslide` feature [default: the level that gives the handler configuration''s `mpp`, else 0]'
            cand --mpp 'Analyse slides at this resolution, in microns per pixel: the coarsest pyramid level not coarser is read and the rest resampled as preprocessing resamples (PCam: 0.972, 10x). Needs the slide''s resolution (its mpp property, TIFF or PNG resolution, or --slide-mpp)'
            cand --magnification 'Analyse slides at this objective magnification (10: 10x), relative to the scan''s objective power, or at 10/X microns per pixel where the slide declares none'
            cand --slide-mpp 'The slides'' level-0 resolution in microns per pixel, for files that declare none (or an implausible one); a resolution a slide declares is kept (see --override-slide-mpp)'
            cand --tiles 'Write one row per window of every slide (path, x, y, width, height, tissue, saturation, probability, label, then prob_<label> for every class of a binary or multiclass model; windows that were not run have no probability): JSON Lines for a .jsonl file, else CSV'
            cand --heatmap 'Write each slide''s heatmap: a PNG to look at (tissue in matplotlib''s plasma colours, not-tissue grey, a colour bar), or a pyramidal TIFF at the slide''s level-0 size that OpenSlide opens and viewers overlay (not-tissue transparent). FILE.png or FILE.tif for one input, else DIR/<the input''s path>.heatmap.png (or .tif, see --heatmap-format)'
            cand --heatmap-format 'What --heatmap DIR writes for each slide'
            cand --heatmap-size 'Largest side of a heatmap in pixels (16 to 16384)'
            cand --smooth 'Gaussian smoothing of the heatmap and the regions over tissue, sigma in analysed pixels (the slide as read at the model''s resolution, not level 0)'
            cand --class 'The class of a multiclass model whose map, regions and most suspicious window are each slide''s result (its label, or its index) [default: every class, one map each]'
            cand --geojson 'Write each slide''s windows and positive regions as QuPath GeoJSON (File > Import objects), in level-0 pixels: FILE.geojson for one input, else DIR/<the input''s path>.geojson'
            cand --asap-xml 'Write each slide''s positive regions as ASAP XML annotations (the Camelyon16 ground truth''s format): FILE.xml for one input, else DIR/<the input''s path>.xml'
            cand --lesions 'Write each slide''s regions as Camelyon16 lesion lines (Confidence,X,Y: peak probability and its level-0 location; no header): FILE.csv for one input, else DIR/<the input''s path>.lesions.csv'
            cand --wsinfer-out 'Write WSInfer''s results folder in DIR, for QuPath scripts and analyses built on WSInfer''s outputs: model-outputs-csv/<slide>.csv (minx,miny,width,height,prob_<class>... per tissue window, level-0 pixels), model-outputs-geojson/<slide>.geojson (a locked tile per tissue window), patches/<slide>.h5 (the windows'' coordinates), masks/<slide>.jpg (the slide with its tissue outlined) and run_metadata_<time>.json; <slide> is the slide''s file name without its extension'
            cand --remote 'Predict with a remote inference API (TorchServe or scancer serve): each image is PUT to URL/predictions/MODEL, where --model is the model''s name [default URL: SCANCER_API_URL, else the profile''s api_url]. --config gives the labels where the server does not'
            cand -j 'Requests in flight with --remote'
            cand --jobs 'Requests in flight with --remote'
            cand --retries 'With --remote, tries again this many times (waiting 0.2 s, then twice as long each time) when the server answers 503 or cannot be reached'
            cand --profile 'A profile of the configuration file ($XDG_CONFIG_HOME/scancer/config.toml, else ~/.config/scancer/config.toml) [env: SCANCER_PROFILE]'
            cand -u 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]'
            cand --user 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]'
            cand --token 'Bearer token [env: SCANCER_TOKEN]'
            cand --token-file 'A file with the Bearer token, or TorchServe''s key_file.json'
            cand --timeout 'Seconds to wait for each answer'
            cand --color 'When to colour the output: auto colours terminals unless NO_COLOR is set'
            cand --resume 'Go on from an interrupted run of the same command: the inputs already recorded in --output''s FILE.partial (or FILE) are skipped and the rest appended, so the output equals one uninterrupted run (formats json, jsonl, csv)'
            cand --no-optimize 'Run a TorchScript graph as saved, as TorchServe does, instead of frozen and optimised for inference (several times faster on CPU; results agree within a few 1e-6; .pt2 and ONNX models come optimised)'
            cand -q 'No progress bar and no summary on standard error'
            cand --quiet 'No progress bar and no summary on standard error'
            cand --tile 'Cut images larger than the model''s input into windows (whole slides), as a handler configuration with `patch = true` does; each slide gets one record (its most suspicious window, plus a summary)'
            cand --all-tiles 'Run every window of a slide, background included (the result still counts only tissue)'
            cand --override-slide-mpp 'Use --slide-mpp for every slide, also those that declare a resolution (each one said in a warning): for slides whose declared resolution is wrong'
            cand --overlay 'Blend the heatmap over a downscaled copy of the slide'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'scancer;archive'= {
            cand --model-name 'Model name (^[A-Za-z0-9][A-Za-z0-9_\-.]*$); the archive is <export path>/<name>.mar'
            cand -v 'Model version'
            cand --version 'Model version'
            cand --serialized-file 'The model file: AOTInductor package (.pt2), ONNX (.onnx) or TorchScript (.pt)'
            cand --handler 'TorchServe handler: a built-in name (image_classifier, ...) or a Python file [default with --config: a generated handler that applies the configuration]'
            cand --config 'scancer handler configuration (TOML), carried in the archive as scancer-handler.toml'
            cand --model-file 'Python model file (eager-mode models; scancer itself runs exported models only)'
            cand --extra-files 'Comma-separated files, folders (their contents go to the archive root) and glob patterns'
            cand --runtime 'Runtime named in the manifest'
            cand --export-path 'Folder to write the archive into'
            cand --archive-format 'default: a deflated .mar (models stored); zip-store: nothing compressed; tgz: <name>.tar.gz; no-archive: a folder <name>/'
            cand -r 'Python requirements file for TorchServe'
            cand --requirements-file 'Python requirements file for TorchServe'
            cand -c 'TorchServe model configuration (YAML: minWorkers, batchSize, ...)'
            cand --config-file 'TorchServe model configuration (YAML: minWorkers, batchSize, ...)'
            cand --color 'When to colour the output: auto colours terminals unless NO_COLOR is set'
            cand -f 'Overwrite an existing archive'
            cand --force 'Overwrite an existing archive'
            cand --reproducible 'Fixed timestamps (SOURCE_DATE_EPOCH, else 1980-01-01) so that the same inputs give the same bytes, for CI artefacts'
            cand -h 'Print help'
            cand --help 'Print help'
            cand inspect 'Print an archive''s manifest, files and handler configuration'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'scancer;archive;inspect'= {
            cand --color 'When to colour the output: auto colours terminals unless NO_COLOR is set'
            cand --verify 'Also load the model and run one forward pass on an input of the configured shape'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'scancer;archive;help'= {
            cand inspect 'Print an archive''s manifest, files and handler configuration'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'scancer;archive;help;inspect'= {
        }
        &'scancer;archive;help;help'= {
        }
        &'scancer;store'= {
            cand --url 'The management API [default: http://127.0.0.1:8081] [env: SCANCER_STORE_URL]'
            cand --profile 'A profile of the configuration file ($XDG_CONFIG_HOME/scancer/config.toml, else ~/.config/scancer/config.toml) [env: SCANCER_PROFILE]'
            cand -u 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]'
            cand --user 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]'
            cand --token 'Bearer token [env: SCANCER_TOKEN]'
            cand --token-file 'A file with the Bearer token, or TorchServe''s key_file.json'
            cand --timeout 'Seconds to wait for each answer'
            cand --color 'When to colour the output: auto colours terminals unless NO_COLOR is set'
            cand --json 'Print the server''s JSON instead of a table (list: every page merged)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand list 'List the registered models (following every page)'
            cand describe 'Describe a model: its versions, workers and queue'
            cand register 'Register an archive: an http(s) URL the server downloads, or a file in its model store'
            cand scale 'Set a model''s number of workers'
            cand set-default 'Make a version the one that /predictions/{model} answers with'
            cand unregister 'Unregister a model version (the default one unless --version)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'scancer;store;list'= {
            cand --url 'The management API [default: http://127.0.0.1:8081] [env: SCANCER_STORE_URL]'
            cand --profile 'A profile of the configuration file ($XDG_CONFIG_HOME/scancer/config.toml, else ~/.config/scancer/config.toml) [env: SCANCER_PROFILE]'
            cand -u 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]'
            cand --user 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]'
            cand --token 'Bearer token [env: SCANCER_TOKEN]'
            cand --token-file 'A file with the Bearer token, or TorchServe''s key_file.json'
            cand --timeout 'Seconds to wait for each answer'
            cand --color 'When to colour the output: auto colours terminals unless NO_COLOR is set'
            cand --json 'Print the server''s JSON instead of a table (list: every page merged)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'scancer;store;describe'= {
            cand --version 'One version [default: the default version]'
            cand --url 'The management API [default: http://127.0.0.1:8081] [env: SCANCER_STORE_URL]'
            cand --profile 'A profile of the configuration file ($XDG_CONFIG_HOME/scancer/config.toml, else ~/.config/scancer/config.toml) [env: SCANCER_PROFILE]'
            cand -u 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]'
            cand --user 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]'
            cand --token 'Bearer token [env: SCANCER_TOKEN]'
            cand --token-file 'A file with the Bearer token, or TorchServe''s key_file.json'
            cand --timeout 'Seconds to wait for each answer'
            cand --color 'When to colour the output: auto colours terminals unless NO_COLOR is set'
            cand --all 'Every version'
            cand --json 'Print the server''s JSON instead of a table (list: every page merged)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'scancer;store;register'= {
            cand --model-name 'Name to register the model under [default: the archive''s]'
            cand --handler 'Handler to use instead of the archive''s'
            cand --runtime 'Runtime to use instead of the archive''s'
            cand --batch-size 'Requests per batch'
            cand --max-batch-delay 'Milliseconds to wait to fill a batch'
            cand --initial-workers 'Workers to start [TorchServe''s default: its default_workers_per_model]'
            cand --response-timeout 'Seconds TorchServe waits for one inference'
            cand --wait-timeout 'Seconds to wait with --wait'
            cand --url 'The management API [default: http://127.0.0.1:8081] [env: SCANCER_STORE_URL]'
            cand --profile 'A profile of the configuration file ($XDG_CONFIG_HOME/scancer/config.toml, else ~/.config/scancer/config.toml) [env: SCANCER_PROFILE]'
            cand -u 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]'
            cand --user 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]'
            cand --token 'Bearer token [env: SCANCER_TOKEN]'
            cand --token-file 'A file with the Bearer token, or TorchServe''s key_file.json'
            cand --timeout 'Seconds to wait for each answer'
            cand --color 'When to colour the output: auto colours terminals unless NO_COLOR is set'
            cand --synchronous 'Let the server answer only once the workers have started'
            cand --wait 'Wait until the wanted number of workers is READY'
            cand --json 'Print the server''s JSON instead of a table (list: every page merged)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'scancer;store;scale'= {
            cand --version 'The version to scale [default: the default version]'
            cand --min-workers 'Fewest workers'
            cand --max-workers 'Most workers'
            cand --wait-timeout 'Seconds to wait with --wait'
            cand --url 'The management API [default: http://127.0.0.1:8081] [env: SCANCER_STORE_URL]'
            cand --profile 'A profile of the configuration file ($XDG_CONFIG_HOME/scancer/config.toml, else ~/.config/scancer/config.toml) [env: SCANCER_PROFILE]'
            cand -u 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]'
            cand --user 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]'
            cand --token 'Bearer token [env: SCANCER_TOKEN]'
            cand --token-file 'A file with the Bearer token, or TorchServe''s key_file.json'
            cand --timeout 'Seconds to wait for each answer'
            cand --color 'When to colour the output: auto colours terminals unless NO_COLOR is set'
            cand --synchronous 'Let the server answer only once the workers have changed'
            cand --wait 'Wait until the wanted number of workers is READY'
            cand --json 'Print the server''s JSON instead of a table (list: every page merged)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'scancer;store;set-default'= {
            cand --url 'The management API [default: http://127.0.0.1:8081] [env: SCANCER_STORE_URL]'
            cand --profile 'A profile of the configuration file ($XDG_CONFIG_HOME/scancer/config.toml, else ~/.config/scancer/config.toml) [env: SCANCER_PROFILE]'
            cand -u 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]'
            cand --user 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]'
            cand --token 'Bearer token [env: SCANCER_TOKEN]'
            cand --token-file 'A file with the Bearer token, or TorchServe''s key_file.json'
            cand --timeout 'Seconds to wait for each answer'
            cand --color 'When to colour the output: auto colours terminals unless NO_COLOR is set'
            cand --json 'Print the server''s JSON instead of a table (list: every page merged)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'scancer;store;unregister'= {
            cand --version 'The version to remove'
            cand --url 'The management API [default: http://127.0.0.1:8081] [env: SCANCER_STORE_URL]'
            cand --profile 'A profile of the configuration file ($XDG_CONFIG_HOME/scancer/config.toml, else ~/.config/scancer/config.toml) [env: SCANCER_PROFILE]'
            cand -u 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]'
            cand --user 'HTTP Basic credentials: NAME prompts for the password without echo, or NAME:PASSWORD [env: SCANCER_USER, SCANCER_PASSWORD]'
            cand --token 'Bearer token [env: SCANCER_TOKEN]'
            cand --token-file 'A file with the Bearer token, or TorchServe''s key_file.json'
            cand --timeout 'Seconds to wait for each answer'
            cand --color 'When to colour the output: auto colours terminals unless NO_COLOR is set'
            cand --json 'Print the server''s JSON instead of a table (list: every page merged)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'scancer;store;help'= {
            cand list 'List the registered models (following every page)'
            cand describe 'Describe a model: its versions, workers and queue'
            cand register 'Register an archive: an http(s) URL the server downloads, or a file in its model store'
            cand scale 'Set a model''s number of workers'
            cand set-default 'Make a version the one that /predictions/{model} answers with'
            cand unregister 'Unregister a model version (the default one unless --version)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'scancer;store;help;list'= {
        }
        &'scancer;store;help;describe'= {
        }
        &'scancer;store;help;register'= {
        }
        &'scancer;store;help;scale'= {
        }
        &'scancer;store;help;set-default'= {
        }
        &'scancer;store;help;unregister'= {
        }
        &'scancer;store;help;help'= {
        }
        &'scancer;serve'= {
            cand --model-store 'TorchServe''s model store: the folder archives are registered from. Turns on TorchServe''s layout: inference, management and metrics APIs on their own ports'
            cand --models 'Archives in the model store to register at start: `all`, FILE.mar or NAME=FILE.mar (TorchServe''s load_models; ignored when a config snapshot is restored)'
            cand --ts-config 'TorchServe''s config.properties (also: TS_CONFIG_FILE). Without it, the newest config snapshot is restored, else ./config.properties is read'
            cand --allowed-urls 'URLs the management API may register archives from: comma-separated regular expressions, each matching a whole URL (TorchServe''s allowed_urls). Unlike TorchServe, none by default: only the model store'
            cand --max-download-size 'Largest archive a registration downloads, in bytes'
            cand --download-timeout 'Seconds a registration''s download may take'
            cand --workers 'Workers each model starts with: model instances running batches side by side, each on one thread (TorchServe''s default_workers_per_model) [default: --threads, else one per physical core; one on CUDA]'
            cand --host 'Address to listen on; anything but loopback should come with --auth-file or --token-file [default: 127.0.0.1]'
            cand -p 'Port of the inference API, or of every API without --model-store (0: any free port, printed at start-up) [default: 8080]'
            cand --port 'Port of the inference API, or of every API without --model-store (0: any free port, printed at start-up) [default: 8080]'
            cand --management-port 'Port of the management API, with --model-store (0: any free port) [default: 8081]'
            cand --metrics-port 'Port of the metrics API, with --model-store (0: any free port) [default: 8082]'
            cand --grpc-port 'gRPC port: KServe V2''s and TorchServe''s gRPC inference services (0: any free port, printed at start-up) [default: 7070]'
            cand --grpc-management-port 'gRPC management port, with --model-store: TorchServe''s gRPC management API (0: any free port) [default: 7071]'
            cand -b 'Images per forward pass (serve: the most requests batched together). Every answer is the one this batch shape gives: a partial batch is padded, or runs at a smaller shape checked at load to answer bit for bit the same, so on one machine a result is identical whatever the image''s neighbours, the load and the threads; another CPU''s instruction set (AVX-512, AVX2, AVX) agrees within 1e-5, and so does another batch size'
            cand --batch-size 'Images per forward pass (serve: the most requests batched together). Every answer is the one this batch shape gives: a partial batch is padded, or runs at a smaller shape checked at load to answer bit for bit the same, so on one machine a result is identical whatever the image''s neighbours, the load and the threads; another CPU''s instruction set (AVX-512, AVX2, AVX) agrees within 1e-5, and so does another batch size'
            cand --threads 'Model instances running side by side, each running whole forward passes on one thread (serve: workers per model) [default: one per physical core; one on CUDA]'
            cand --device 'Where the model runs'
            cand --max-image-pixels 'Refuse images with more pixels than this (decompression-bomb guard)'
            cand --max-batch-delay 'Milliseconds to wait for more requests to fill a batch once one is queued (stops early when no other request is on its way)'
            cand --job-queue-size 'Images that may wait for each model version; a request finding no room waits up to --queue-wait, then gets 503 [default: 100]'
            cand --queue-wait 'Milliseconds a request may wait for room in a full queue before its 503 (0: TorchServe''s immediate 503)'
            cand --max-request-size 'Largest request body in bytes; larger ones are answered 413 (TorchServe''s max_request_size) [default: 6553500]'
            cand --client-timeout 'Seconds a client may take to send a request once started, or to read its answer (408 after)'
            cand --head-timeout 'Seconds a client may take to send a request head once its first byte has come (408 after)'
            cand --keep-alive-timeout 'Seconds an idle keep-alive connection stays open'
            cand --max-connections 'Open connections at most; more are answered 503 and closed'
            cand --max-body-memory 'Request body bytes held in memory at once, over all requests; further bodies wait for room'
            cand --auth-file 'HTTP Basic credentials, one name:password per line (also: SCANCER_AUTH=name:password)'
            cand --token-file 'Bearer tokens, one per line, or TorchServe''s key_file.json (also: SCANCER_TOKEN)'
            cand --open 'Endpoints that need no credentials when authentication is on [default: health; none with --model-store, where TorchServe''s /ping needs the inference key]'
            cand --slides 'Serve the whole-slide images under DIR on the inference port: the slide API (/slides: Deep Zoom tiles, thumbnails, properties, uploads); its catalogue is kept in DIR/.scancer'
            cand --max-slide-upload 'Largest slide upload (PUT /slides/NAME) in bytes'
            cand --color 'When to colour the output: auto colours terminals unless NO_COLOR is set'
            cand --ncs 'Neither write nor restore config snapshots (TorchServe''s --no-config-snapshots)'
            cand --start 'Accepted for TorchServe''s command lines (KServe''s runtime passes it): serve always starts'
            cand --foreground 'Accepted for TorchServe''s command lines: serve always runs in the foreground'
            cand --enable-model-api 'Allow registering and unregistering models through the management API (TorchServe''s enable_model_api)'
            cand --disable-token-auth 'No TorchServe token authorization with --model-store (its key_file.json; TorchServe''s disable_token_authorization)'
            cand --dt 'No TorchServe token authorization with --model-store (its key_file.json; TorchServe''s disable_token_authorization)'
            cand --no-grpc 'No gRPC ports'
            cand --no-optimize 'Run a TorchScript graph as saved, as TorchServe does, instead of frozen and optimised for inference (several times faster on CPU; results agree within a few 1e-6; .pt2 and ONNX models come optimised)'
            cand -q 'No access log on standard error'
            cand --quiet 'No access log on standard error'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'scancer;help'= {
            cand predict 'Run a model on image files, directories of images, or standard input: locally, on whole slides (--tile), or with a remote inference API (--remote)'
            cand archive 'Package a model and its handler configuration as a TorchServe .mar archive, or inspect one'
            cand store 'Manage models on a TorchServe management API (Scancer''s model store)'
            cand serve 'Serve models: TorchServe''s inference and management APIs, KServe V1 and V2, Prometheus metrics'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'scancer;help;predict'= {
        }
        &'scancer;help;archive'= {
            cand inspect 'Print an archive''s manifest, files and handler configuration'
        }
        &'scancer;help;archive;inspect'= {
        }
        &'scancer;help;store'= {
            cand list 'List the registered models (following every page)'
            cand describe 'Describe a model: its versions, workers and queue'
            cand register 'Register an archive: an http(s) URL the server downloads, or a file in its model store'
            cand scale 'Set a model''s number of workers'
            cand set-default 'Make a version the one that /predictions/{model} answers with'
            cand unregister 'Unregister a model version (the default one unless --version)'
        }
        &'scancer;help;store;list'= {
        }
        &'scancer;help;store;describe'= {
        }
        &'scancer;help;store;register'= {
        }
        &'scancer;help;store;scale'= {
        }
        &'scancer;help;store;set-default'= {
        }
        &'scancer;help;store;unregister'= {
        }
        &'scancer;help;serve'= {
        }
        &'scancer;help;help'= {
        }
    ]
    $completions[$command]
}
